/**
 * Differential test against buildah: the same Dockerfile (testdata/build/differential, features
 * buildah 1.28 supports) on the same busybox base must give the same root filesystem (path,
 * type, mode, uid, gid, size, content hash, link target) and the same container config.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { readLayout } from '../../../src/oci/layout/layout.js';
import { imageFromContent } from '../../../src/oci/layout/from-content.js';
import { writeArchive } from '../../../src/oci/archive/write.js';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import { firstReason, needTool } from '../../helpers/capabilities.js';
import { run } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX, CASES, makeStore, runBuild, treeManifest, unpackImage } from './harness.js';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

const why = firstReason(buildUnavailable(), needTool('buildah'));
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
let root = '';
let store: ImageStore;
let bh: string[] = [];

beforeAll(async () => {
  if (why) return;
  ({ root, store } = await makeStore());
  const work = tmp('tsbuild-build-buildah-');
  bh = ['--root', join(work, 'root'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs'];
  const rec = await store.resolve(BUSYBOX);
  await pipeline(writeArchive(store.content, [{ descriptor: rec.descriptor, names: [BUSYBOX] }], { format: 'docker' }), createWriteStream(join(work, 'base.tar')));
  const p = await run('buildah', [...bh, 'pull', '-q', `docker-archive:${join(work, 'base.tar')}`]);
  if (p.code !== 0) throw new Error(`buildah pull: ${p.stderr}`);
  const t = await run('buildah', [...bh, 'tag', p.stdout.trim().split('\n').pop()!, BUSYBOX]);
  if (t.code !== 0) throw new Error(`buildah tag: ${t.stderr}`);
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const t of temps.reverse()) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('differential: tsbuild build vs buildah build', () => {
  it('same rootfs and config for the differential case', async () => {
    const ctx = join(CASES, 'differential', 'ctx');
    const ours = await runBuild(root, store, { context: ctx, noCache: true });
    const work = tmp('tsbuild-build-buildah-out-');
    const b = await run('buildah', [...bh, 'build', '--isolation', 'chroot', '--pull=never', '-t', 'localhost/diff/theirs', ctx], { timeout: 300_000 });
    expect(b.code, b.stderr).toBe(0);
    const layoutDir = join(work, 'layout');
    const push = await run('buildah', [...bh, 'push', 'localhost/diff/theirs', `oci:${layoutDir}:theirs`]);
    expect(push.code, push.stderr).toBe(0);
    const layout = await readLayout(layoutDir);
    const theirs = imageFromContent(new FileContentStore(layoutDir), layout.entries[0]!.descriptor);

    const a = tmp('tsbuild-build-ours-');
    const t = tmp('tsbuild-build-theirs-');
    await unpackImage(ours.result.image, a);
    await unpackImage(theirs, t);
    const mine = treeManifest(a);
    const other = treeManifest(t);
    // buildah 1.28 leaves its RUN mount points in layers (empty /etc/hosts, /etc/resolv.conf,
    // /run); buildkit does not, and neither do we. Only those, and only when empty, are skipped.
    const buildahArtefacts = new Set(['etc/hosts', 'etc/resolv.conf', 'run']);
    const diffs: string[] = [];
    for (const p of new Set([...mine.keys(), ...other.keys()])) {
      const x = mine.get(p);
      const y = other.get(p);
      if (!x && y && buildahArtefacts.has(p) && y.size === 0 && (y.type === 'dir' ? ![...other.keys()].some((k) => k.startsWith(p + '/')) : true)) continue;
      if (JSON.stringify(x) !== JSON.stringify(y)) diffs.push(`${p}: ours ${JSON.stringify(x)} buildah ${JSON.stringify(y)}`);
    }
    expect(diffs).toEqual([]);
    const [ca, cb] = [(await ours.result.image.config()).config ?? {}, (await theirs.config()).config ?? {}];
    for (const k of ['Env', 'User', 'WorkingDir', 'Cmd', 'Entrypoint'] as const) expect(ca[k] ?? null, k).toEqual(cb[k] ?? null);
  }, 300_000);
});
