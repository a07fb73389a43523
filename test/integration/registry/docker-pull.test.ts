/**
 * Images pushed by `tsbuild push` are pulled and run by docker (Debian's docker.io, a private
 * dockerd; loopback registries are insecure by default in docker), with the digest tsbuild printed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { dockerdSkipReason, startDockerd, type PrivateDockerd } from '../../helpers/dockerd.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(registrySkipReason(), needBuiltCli(), dockerdSkipReason());
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('docker pulls what tsbuild pushed', () => {
  let reg: TestRegistry;
  let dockerd: PrivateDockerd;
  let root = '';

  beforeAll(async () => {
    reg = await startRegistry();
    dockerd = await startDockerd();
    root = mkdtempSync(join(tmpdir(), 'tsbuild-docker-pull-'));
  }, 120_000);

  afterAll(async () => {
    await dockerd?.stop();
    await reg?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('docker pull gets the digest tsbuild push printed; docker run runs the image', async () => {
    const ref = `${reg.host}/docker/busybox:v1`;
    await tsbuildOk(['import', await busyboxRootfs(), ref, '-c', 'ENV FROM_TSBUILD=yes', '-c', 'CMD ["sh", "-c", "echo $FROM_TSBUILD"]'], { root });
    const digest = (await tsbuildOk(['push', '-q', ref], { root, timeout: 120_000 })).stdout.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const pull = await dockerd.docker(['pull', ref], { timeout: 120_000 });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain(`Digest: ${digest}`);
    const repoDigests = await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    expect(JSON.parse(repoDigests.stdout) as string[]).toEqual([`${reg.host}/docker/busybox@${digest}`]);
    const r = await dockerd.docker(['run', '--rm', '--network', 'none', ref], { timeout: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('yes\n');
    // by digest as well
    const byDigest = await dockerd.docker(['run', '--rm', '--network', 'none', `${reg.host}/docker/busybox@${digest}`, 'echo', 'pinned'], { timeout: 120_000 });
    expect(byDigest.code, byDigest.stderr).toBe(0);
    expect(byDigest.stdout).toBe('pinned\n');
  }, 300_000);
});
