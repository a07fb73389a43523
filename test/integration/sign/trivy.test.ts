/**
 * Trivy (built from the Go module proxy by test/helpers/go-tools.ts) reads tsbuild's output the
 * three ways users run it (docker archive from `tsbuild save`, OCI layout from `tsbuild copy`, the
 * registry after `tsbuild push`), detects Debian 12 and finds the same packages, with the same
 * purls, as `tsbuild sbom` and dpkg-query. Trivy runs offline: CycloneDX output needs no
 * vulnerability database.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianRootfs } from '../../helpers/base-images.js';
import { needBuiltCli, needDebianRootfs, needTool } from '../../helpers/capabilities.js';
import { goTool } from '../../helpers/go-tools.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { makeTempDir, removeTempDirs, run, tsbuildOk } from '../../helpers/tools.js';

const trivy = await goTool('trivy');
const why = registrySkipReason() ?? needBuiltCli() ?? needDebianRootfs() ?? needTool('dpkg-query') ?? trivy.skip;
if (why) console.warn(`skip: ${why}`);

interface Bom {
  components: { type: string; name: string; version?: string; purl?: string }[];
}

describe.skipIf(!!why)('trivy reads tsbuild images', () => {
  let reg: TestRegistry;
  let dir: string;
  let root: string;
  let expected: string[];
  let ours: string[];
  const image = (): string => `${reg.host}/scan/debian:v1`;

  async function trivyBom(args: string[]): Promise<Bom> {
    const out = join(dir, `bom-${Math.random().toString(36).slice(2)}.json`);
    const r = await run(trivy.path!, ['image', '--cache-dir', join(dir, 'trivy-cache'), '--format', 'cyclonedx', '--output', out, ...args], { env: { HOME: dir }, timeout: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Detected OS\s+family="debian" version="12[.\d]*"/);
    return JSON.parse(await readFile(out, 'utf8')) as Bom;
  }

  function check(bom: Bom): void {
    const os = bom.components.find((c) => c.type === 'operating-system');
    expect(os?.name).toBe('debian');
    expect(os?.version).toMatch(/^12(\.\d+)*$/);
    const libs = bom.components.filter((c) => c.type === 'library');
    expect(libs.map((c) => `${c.name} ${c.version}`).sort()).toEqual(expected);
    expect(libs.map((c) => c.purl).sort()).toEqual(ours);
  }

  beforeAll(async () => {
    reg = await startRegistry();
    dir = await makeTempDir('tsbuild-trivy-');
    root = join(dir, 'root');
    const rootfs = await debianRootfs();
    await tsbuildOk(['import', rootfs, image()], { root, timeout: 300_000 });
    const q = await run('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}|${Package} ${Version}\n', `--admindir=${join(rootfs, 'var/lib/dpkg')}`]);
    expected = q.stdout.split('\n').filter((l) => l.startsWith('ii')).map((l) => l.slice(l.indexOf('|') + 1)).sort();
    const cdx = JSON.parse((await tsbuildOk(['sbom', '--format', 'cyclonedx-json', image()], { root })).stdout) as Bom;
    ours = cdx.components.filter((c) => c.type === 'library').map((c) => c.purl ?? '').sort();
    expect(ours.length).toBe(expected.length);
  });

  afterAll(async () => {
    await reg?.stop();
    await removeTempDirs();
  });

  it('scans a docker archive from tsbuild save', async () => {
    await tsbuildOk(['save', '-o', join(dir, 'debian.tar'), image()], { root });
    check(await trivyBom(['--input', join(dir, 'debian.tar')]));
  });

  it('scans an OCI layout from tsbuild copy', async () => {
    await tsbuildOk(['copy', image(), `oci:${join(dir, 'layout')}:v1`], { root });
    check(await trivyBom(['--input', join(dir, 'layout')]));
  });

  it('scans the image in the registry after tsbuild push', async () => {
    await tsbuildOk(['push', '-q', image()], { root, timeout: 300_000 });
    check(await trivyBom(['--insecure', image()]));
  });
});
