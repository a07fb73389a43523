/** The `volatile` overlay of throw-away containers (`run --rm`): planned, mounted, cleaned up. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planOverlay } from '../../../runtime/rootfs/overlay.js';
import { prepareRootfs } from '../../../runtime/rootfs/prepare.js';
import { SnapshotStore } from '../../../runtime/rootfs/snapshots.js';
import { layersImage, memLayer, tarOf } from './layers.js';

const why = process.getuid?.() !== 0 ? 'overlay mounts need root' : !readFileSync('/proc/filesystems', 'utf8').includes('overlay') ? 'the kernel has no overlayfs' : undefined;
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
afterEach(() => { while (temps.length) rmSync(temps.pop()!, { recursive: true, force: true }); });

/** The mount options of the mount at `target` in /proc/self/mountinfo (super options). */
function superOptions(target: string): string | undefined {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target);
  return line?.split(' - ')[1]?.split(' ')[2];
}

describe('volatile overlay', () => {
  it('planOverlay appends volatile in both option forms, only when asked', () => {
    expect(planOverlay(['/s/a'], '/c').options).toBe('lowerdir=/s/a,upperdir=/c/upper,workdir=/c/work');
    const p = planOverlay(['/s/a'], '/c', { volatile: true });
    expect(p.options).toBe('lowerdir=/s/a,upperdir=/c/upper,workdir=/c/work,volatile');
    expect(p.volatile).toBe(true);
    const long = planOverlay(Array.from({ length: 80 }, (_, i) => `/var/lib/tsbuild/snapshots/${String(i).padStart(64, '0')}`), '/c', { volatile: true });
    expect(long.cwd).toBe('/c');
    expect(long.options.endsWith(',upperdir=upper,workdir=work,volatile')).toBe(true);
  });

  it.skipIf(!!why)('prepareRootfs mounts it volatile (or plain on kernels without it); cleanup leaves nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tsbuild-volatile-'));
    temps.push(root);
    const snaps = new SnapshotStore(root);
    const image = layersImage([memLayer(await tarOf(['etc/', 'etc/a=one']))]);
    const ctr = join(root, 'containers', 'c1');
    mkdirSync(ctr, { recursive: true });
    const r = await prepareRootfs(snaps, image, ctr, undefined, { volatile: true });
    try {
      const opts = superOptions(r.rootfs) ?? '';
      const [major, minor] = (readFileSync('/proc/sys/kernel/osrelease', 'utf8').match(/^(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
      // shown as `volatile`, or `fsync=volatile` since Linux 6.6
      if (major! > 5 || (major === 5 && minor! >= 10)) expect(opts.split(',').some((o) => o === 'volatile' || o === 'fsync=volatile'), opts).toBe(true);
      writeFileSync(join(r.rootfs, 'new'), 'n');
      expect(readFileSync(join(r.rootfs, 'etc/a'), 'utf8')).toBe('one');
    } finally {
      await r.cleanup();
    }
    expect(superOptions(r.rootfs)).toBeUndefined();
    expect(readdirSync(ctr)).toEqual([]);
  });
});
