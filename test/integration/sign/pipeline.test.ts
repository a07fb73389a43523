/**
 * The CI flow end to end with the built CLI: import the Debian base image, push it, make its SBOM,
 * sign it and attach the SBOM as an attestation, then let the real cosign verify both.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianRootfs } from '../../helpers/base-images.js';
import { needBuiltCli, needDebianRootfs } from '../../helpers/capabilities.js';
import { goTool } from '../../helpers/go-tools.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { makeTempDir, removeTempDirs, run, tsbuildOk } from '../../helpers/tools.js';

const cosign = await goTool('cosign');
const why = registrySkipReason() ?? needBuiltCli() ?? needDebianRootfs() ?? cosign.skip;
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('push → sbom → sign → attest → cosign verify', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
    await removeTempDirs();
  });

  it('cosign verifies the signature and the SPDX attestation of a pushed Debian image', async () => {
    const dir = await makeTempDir('tsbuild-pipeline-');
    const root = join(dir, 'root');
    const env = { COSIGN_PASSWORD: 'ci-pw', HOME: dir, COSIGN_REPOSITORY: undefined };
    const image = `${reg.host}/ci/debian:v1`;
    await tsbuildOk(['import', await debianRootfs(), image], { root, timeout: 300_000 });
    const digest = (await tsbuildOk(['push', '-q', image], { root, timeout: 300_000 })).stdout.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    await tsbuildOk(['key', 'generate'], { root, cwd: dir, env });
    const sbom = (await tsbuildOk(['sbom', image], { root, env: { SOURCE_DATE_EPOCH: '0' } })).stdout;
    await writeFile(join(dir, 'sbom.spdx.json'), sbom);
    await tsbuildOk(['sign', '--key', 'cosign.key', image], { root, cwd: dir, env });
    await tsbuildOk(['attest', '--key', 'cosign.key', '--type', 'spdxjson', '--predicate', 'sbom.spdx.json', image], { root, cwd: dir, env });

    const pinned = `${reg.host}/ci/debian@${digest}`;
    const v = await run(cosign.path!, ['verify', '--key', 'cosign.pub', '--insecure-ignore-tlog=true', '--allow-insecure-registry', pinned], { cwd: dir, env });
    expect(v.code, v.stderr).toBe(0);
    const va = await run(cosign.path!, ['verify-attestation', '--key', 'cosign.pub', '--type', 'spdxjson', '--insecure-ignore-tlog=true', '--allow-insecure-registry', pinned], { cwd: dir, env });
    expect(va.code, va.stderr).toBe(0);
    const envelope = JSON.parse(va.stdout.trim().split('\n')[0]!) as { payload: string };
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as { predicate: { packages: unknown[] }; subject: { digest: { sha256: string } }[] };
    expect(statement.subject[0]!.digest.sha256).toBe(digest.slice(7));
    expect(statement.predicate.packages.length).toBe((JSON.parse(sbom) as { packages: unknown[] }).packages.length);
    expect(statement.predicate.packages.length).toBeGreaterThan(50);
  });
});
