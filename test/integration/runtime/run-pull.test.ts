import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { makeTempDir, removeTempDirs, runTsbuild, tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(needBuiltCli(), needRoot(), needOverlay(), registrySkipReason());
if (why) console.warn(`skip: ${why}`);

/** `tsbuild run` pulls a missing image through the registry client, as `docker run` does. */
describe.skipIf(!!why)('run pulls on demand', () => {
  let reg: TestRegistry;
  let ref: string;

  beforeAll(async () => {
    reg = await startRegistry();
    const src = await makeTempDir('tsbuild-runpull-src-');
    await tsbuildOk(['import', await busyboxRootfs(), 'localhost/runpull/busybox:1'], { root: src });
    ref = `${reg.host}/runpull/busybox:1`;
    await tsbuildOk(['tag', 'localhost/runpull/busybox:1', ref], { root: src });
    await tsbuildOk(['push', '-q', ref], { root: src });
  });
  afterAll(async () => {
    await reg?.stop();
    await removeTempDirs();
  });

  it('pulls a missing image (default --pull missing), then runs it from the store', async () => {
    const root = await makeTempDir('tsbuild-runpull-');
    const first = await runTsbuild(['run', '--rm', ref, 'echo', 'pulled and ran'], { root });
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('pulled and ran\n');
    expect(first.stderr).toContain(`Unable to find image '${ref}' locally`);
    const second = await runTsbuild(['run', '--rm', ref, 'true'], { root });
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain('Unable to find image');
    expect((await tsbuildOk(['fsck'], { root })).code).toBe(0);
  });

  it('--pull never reports the missing image; an unknown tag fails naming the ref, the store unchanged', async () => {
    const root = await makeTempDir('tsbuild-runpull-never-');
    const never = await runTsbuild(['run', '--rm', '--pull', 'never', ref, 'true'], { root });
    expect(never.code).not.toBe(0);
    expect(never.stderr).toContain(`unable to find image ${ref}`);
    const unknown = await runTsbuild(['run', '--rm', `${reg.host}/runpull/busybox:nope`, 'true'], { root });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/runpull\/busybox:nope.*(manifest unknown|MANIFEST_UNKNOWN|404)/);
    expect((await tsbuildOk(['images', '-a', '--format', 'json'], { root })).stdout.trim()).toMatch(/^(\[\])?$/);
  });
});
