import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planOverlay, MOUNT_DATA_MAX } from '../../../runtime/rootfs/overlay.js';
import { prepareRootfs } from '../../../runtime/rootfs/prepare.js';
import { SnapshotStore } from '../../../runtime/rootfs/snapshots.js';
import { layersImage, memLayer, tarOf } from './layers.js';

const why = process.getuid?.() !== 0 ? 'overlay mounts need root' : !readFileSync('/proc/filesystems', 'utf8').includes('overlay') ? 'the kernel has no overlayfs' : undefined;
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
afterEach(() => { while (temps.length) rmSync(temps.pop()!, { recursive: true, force: true }); });
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tsbuild-rootfs-'));
  temps.push(d);
  return d;
}
const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8');

describe('planOverlay', () => {
  it('orders lowerdirs top-first and escapes separators', () => {
    const p = planOverlay(['/s/a', '/s/b:c', '/s/d,e'], '/c');
    expect(p.options).toBe('lowerdir=/s/d\\,e:/s/b\\:c:/s/a,upperdir=/c/upper,workdir=/c/work');
    expect(p.links).toEqual([]);
    expect(p.target).toBe('/c/rootfs');
  });
  it('switches to short relative links past the page-size limit', () => {
    const lowers = Array.from({ length: 80 }, (_, i) => `/var/lib/tsbuild/snapshots/${i.toString().padStart(64, '0')}`);
    const p = planOverlay(lowers, '/var/lib/tsbuild/containers/abc');
    expect(p.cwd).toBe('/var/lib/tsbuild/containers/abc');
    expect(p.options.length).toBeLessThanOrEqual(MOUNT_DATA_MAX);
    expect(p.options.startsWith('lowerdir=l/0:l/1:')).toBe(true);
    expect(p.links[0]!.target).toBe(lowers[79]);
    expect(p.links[79]!.target).toBe(lowers[0]);
  });
});

describe('snapshots and overlay rootfs', () => {
  it.skipIf(!!why)('unpacks each layer once, in overlay form, and mounts them with a private upper', async () => {
    const root = temp();
    const l1 = memLayer(await tarOf(['etc/', 'etc/a=one', 'd/', 'd/x=x', 'del=gone']));
    const l2 = memLayer(await tarOf(['.wh.del', 'd/', 'd/.wh..wh..opq', 'd/y=y', 'etc/a=two']));
    const snaps = new SnapshotStore(root);
    // the temp dir of an unpacker that died (pid 2^22+1 cannot exist) is removed
    mkdirSync(join(root, 'snapshots', `.tmp-0123456789ab-${2 ** 22 + 1}-00ff`, 'x'), { recursive: true });
    const [s1, s1again] = await Promise.all([snaps.ensure(l1), snaps.ensure(l1)]);
    expect(s1).toBe(s1again);
    expect(s1).toBe(join(root, 'snapshots', (await l1.diffId()).slice(7)));
    const s2 = await snaps.ensure(l2);
    expect(lstatSync(join(s2, 'del')).isCharacterDevice()).toBe(true);
    const ctr = join(root, 'containers', 'c1');
    mkdirSync(ctr, { recursive: true });
    const r = await prepareRootfs(snaps, layersImage([l1, l2]), ctr);
    try {
      expect(mounts()).toContain(r.rootfs);
      expect(readFileSync(join(r.rootfs, 'etc/a'), 'utf8')).toBe('two');
      expect(existsSync(join(r.rootfs, 'del'))).toBe(false);
      expect(readdirSync(join(r.rootfs, 'd'))).toEqual(['y']);
      writeFileSync(join(r.rootfs, 'new'), 'n');
      expect(readFileSync(join(r.upper, 'new'), 'utf8')).toBe('n');
      // the shared snapshot is untouched
      expect(existsSync(join(s1, 'new'))).toBe(false);
    } finally {
      await r.cleanup();
    }
    await r.cleanup();
    expect(mounts()).not.toContain(r.rootfs);
    expect(readdirSync(ctr)).toEqual([]);
    expect(readdirSync(join(root, 'snapshots')).sort()).toEqual([s1, s2].map((s) => s.slice(-64)).sort());
  });

  it.skipIf(!!why)('two stores racing on the same layer both end with one complete snapshot', async () => {
    const root = temp();
    const items = ['big/'];
    for (let i = 0; i < 300; i++) items.push(`big/f${i}=${'x'.repeat(i)}`);
    const layer = memLayer(await tarOf(items));
    const [a, b] = await Promise.all([new SnapshotStore(root).ensure(layer), new SnapshotStore(root).ensure(layer)]);
    expect(a).toBe(b);
    expect(readdirSync(join(root, 'snapshots'))).toEqual([a.slice(-64)]);
    expect(readdirSync(a, { recursive: true }).length).toBe(301);
  });

  it.skipIf(!!why)('mounts an image of 64 layers (option string past the page size) and the empty image', async () => {
    const root = temp();
    const snaps = new SnapshotStore(root);
    const layers = [];
    for (let i = 0; i < 64; i++) layers.push(memLayer(await tarOf([`f${i}=${i}`, `top=${i}`])));
    const ctr = join(root, 'containers', 'a-rather-long-container-directory-name-to-push-the-limit-further');
    mkdirSync(ctr, { recursive: true });
    const r = await prepareRootfs(snaps, layersImage(layers), ctr);
    try {
      const lowers = await Promise.all(layers.map(async (l) => snaps.pathFor(await l.diffId())));
      expect(planOverlay(lowers, ctr).cwd).toBe(ctr);
      expect(readFileSync(join(r.rootfs, 'top'), 'utf8')).toBe('63');
      expect(readFileSync(join(r.rootfs, 'f0'), 'utf8')).toBe('0');
      expect(readdirSync(r.rootfs).length).toBe(65);
    } finally {
      await r.cleanup();
    }
    expect(readdirSync(ctr)).toEqual([]);
    const ctr2 = join(root, 'containers', 'scratch');
    mkdirSync(ctr2, { recursive: true });
    const s = await prepareRootfs(snaps, layersImage([]), ctr2);
    expect(readdirSync(s.rootfs)).toEqual([]);
    await s.cleanup();
    expect(readdirSync(ctr2)).toEqual([]);
    expect(mounts()).not.toContain(root);
  });
});
