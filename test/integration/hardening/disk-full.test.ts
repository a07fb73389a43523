/**
 * Disk full: a store on a small tmpfs. A build whose layer does not fit, a load and a pull of
 * an image bigger than the free space each fail with a clear error (exit 1, "no space left on
 * device", no stack), tag nothing, leave `fsck` clean and no temp files (but resumable
 * partial downloads), mounts or container dirs behind; after the tmpfs grows, the same commands succeed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { run, runTsbuild, tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(needRoot(), needOverlay(), needBuiltCli(), registrySkipReason(), needTool('skopeo'));
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
let root = '';
let reg: TestRegistry | undefined;
let img: RandomImage | undefined;
let archive = '';
const BASE = 'localhost/full/busybox:1';

function images(): string {
  return readFileSync(join(root, 'images.json'), 'utf8');
}

/** Everything that must not be left after a failed command: temp files, mounts, container dirs. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4] ?? '';
    if (mp.startsWith(`${root}/`)) out.push(`mount ${mp}`);
  }
  for (const d of ['tmp', 'containers']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(root, d));
    } catch {
      /* not made */
    }
    // tmp/partial holds interrupted downloads on purpose (the next pull resumes them, as
    // containerd's ingests do); it is outside blobs/, so nothing partial is visible as content
    for (const n of names) if (n !== 'names' && !(d === 'tmp' && n === 'partial')) out.push(`${d}/${n}`);
  }
  return out;
}

async function expectCleanFailure(args: readonly string[], what: string): Promise<void> {
  const before = images();
  const r = await runTsbuild(args, { root });
  expect(r.code, `${what} should fail: ${r.stdout}${r.stderr}`).toBe(1);
  expect(r.stderr, what).toMatch(/no space left on device/i);
  expect(r.stderr, `${what}: no stack trace without --debug`).not.toMatch(/\n\s+at /);
  expect(images(), `${what} tagged nothing`).toBe(before);
  const fsck = await runTsbuild(['fsck', '--format', 'json'], { root });
  expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  expect(leftovers(), `${what} left`).toEqual([]);
}

beforeAll(async () => {
  if (why) return;
  const base = mkdtempSync(join(tmpdir(), 'tsbuild-full-'));
  temps.push(base);
  root = join(base, 'store');
  mkdirSync(root);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tsbuild-test-full', root]);
  await tsbuildOk(['import', await busyboxRootfs(), BASE, '-c', 'CMD ["sh"]'], { root });
  reg = await startRegistry();
  img = await randomImage({ layers: 2, layerBytes: 24 << 20 });
  const r = await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${img.dir}:latest`, `docker://${reg.host}/full/random:1`]);
  if (r.code !== 0) throw new Error(`skopeo copy: ${r.stderr}`);
  archive = join(base, 'random.tar');
  const s = await run('skopeo', ['copy', '--quiet', `oci:${img.dir}:latest`, `docker-archive:${archive}:localhost/full/random:1`]);
  if (s.code !== 0) throw new Error(`skopeo copy: ${s.stderr}`);
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await img?.cleanup();
  if (root) {
    try {
      execFileSync('umount', ['-l', root]);
    } catch {
      /* not mounted */
    }
  }
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('a full disk under the store', () => {
  it('build, load and pull fail cleanly; after the disk grows the same commands succeed', async () => {
    const ctx = mkdtempSync(join(tmpdir(), 'tsbuild-full-ctx-'));
    temps.push(ctx);
    // 30 MB of random data fits in the upper dir, but not twice (upper dir + layer blob)
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BASE}\nRUN head -c 30000000 /dev/urandom > /a\n`);
    await expectCleanFailure(['build', '-t', 'localhost/full/app:1', '--progress', 'plain', ctx], 'build');
    await expectCleanFailure(['load', '-i', archive], 'load');
    await expectCleanFailure(['pull', `${reg!.host}/full/random:1`], 'pull');

    execFileSync('mount', ['-o', 'remount,size=400m', root]);
    await tsbuildOk(['build', '-q', '-t', 'localhost/full/app:1', ctx], { root });
    await tsbuildOk(['load', '-i', archive], { root });
    await tsbuildOk(['pull', '-q', `${reg!.host}/full/random:1`], { root });
    const r = await tsbuildOk(['run', '--rm', 'localhost/full/app:1', 'sh', '-c', 'wc -c < /a'], { root });
    expect(r.stdout.trim()).toBe('30000000');
    const fsck = await tsbuildOk(['fsck', '--format', 'json'], { root });
    expect((JSON.parse(fsck.stdout) as { bad: unknown[] }).bad).toEqual([]);
  }, 300_000);
});
