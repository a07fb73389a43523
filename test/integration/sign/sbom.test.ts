/**
 * `tsbuild sbom` on the Debian base image, cross-checked against dpkg-query run on the same rootfs.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debianRootfs } from '../../helpers/base-images.js';
import { needBuiltCli, needDebianRootfs, needTool } from '../../helpers/capabilities.js';
import { makeTempDir, removeTempDirs, run, tsbuildOk } from '../../helpers/tools.js';

const why = needBuiltCli() ?? needDebianRootfs() ?? needTool('dpkg-query');
if (why) console.warn(`skip: ${why}`);

afterAll(removeTempDirs);

describe.skipIf(!!why)('tsbuild sbom on debian', () => {
  it('lists exactly the packages dpkg-query lists, with the OS and purls, in SPDX and CycloneDX', async () => {
    const rootfs = await debianRootfs();
    const root = await makeTempDir('tsbuild-sbom-');
    await tsbuildOk(['import', rootfs, 'localhost/debian:sbom'], { root, timeout: 300_000 });

    const q = await run('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}|${Package} ${Version} ${Architecture}\n', `--admindir=${join(rootfs, 'var/lib/dpkg')}`]);
    expect(q.code, q.stderr).toBe(0);
    const expected = q.stdout
      .split('\n')
      .filter((l) => l.startsWith('ii'))
      .map((l) => l.slice(l.indexOf('|') + 1))
      .sort();
    expect(expected.length).toBeGreaterThan(50);

    const spdx = JSON.parse((await tsbuildOk(['sbom', 'localhost/debian:sbom', '--format', 'spdx-json'], { root })).stdout) as {
      spdxVersion: string;
      packages: { name: string; versionInfo: string; primaryPackagePurpose?: string; externalRefs?: { referenceType: string; referenceLocator: string }[] }[];
    };
    expect(spdx.spdxVersion).toBe('SPDX-2.3');
    const os = spdx.packages.find((p) => p.primaryPackagePurpose === 'OPERATING-SYSTEM');
    expect(os?.name).toBe('debian');
    expect(os?.versionInfo).toMatch(/^12(\.\d+)*$/);
    const libs = spdx.packages.filter((p) => p.primaryPackagePurpose === 'LIBRARY');
    const purls = libs.map((p) => p.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator ?? '');
    const got = libs.map((p, i) => `${p.name} ${p.versionInfo} ${/[?&]arch=([^&]+)/.exec(purls[i]!)?.[1] ?? ''}`).sort();
    expect(got).toEqual(expected);
    for (const [i, p] of libs.entries()) expect(purls[i]).toMatch(new RegExp(`^pkg:deb/debian/${encodeURIComponent(p.name).replace(/[+.]/g, '\\$&')}@[^?]+\\?arch=\\w+&distro=debian-12`));

    const cdx = JSON.parse((await tsbuildOk(['sbom', 'localhost/debian:sbom', '--format', 'cyclonedx-json'], { root })).stdout) as {
      bomFormat: string;
      components: { type: string; name: string; version: string; purl?: string }[];
    };
    expect(cdx.bomFormat).toBe('CycloneDX');
    expect(cdx.components.filter((c) => c.type === 'library').map((c) => `${c.name} ${c.version}`).sort()).toEqual(expected.map((l) => l.split(' ').slice(0, 2).join(' ')).sort());
  });
});
