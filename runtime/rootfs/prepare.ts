import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image } from '../../src/oci/image.js';
import { RuntimeError } from '../spec/errors.js';
import { MNT_DETACH, mount, umount2 } from './mount.js';
import { planOverlay, MOUNT_DATA_MAX, type OverlayPlan } from './overlay.js';
import type { SnapshotStore } from './snapshots.js';

/** Layers unpacked at the same time by {@link prepareRootfs}. */
const UNPACK_CONCURRENCY = 3;

/** A mounted container root. */
export interface PreparedRootfs {
  /** The overlay mount point (the bundle's root.path). */
  rootfs: string;
  /** The overlay upper dir: everything the container changed (whiteouts in overlay form). */
  upper: string;
  /**
   * Unmounts and removes rootfs, upper, work and the link dir. Idempotent. Never removes
   * `containerDir` itself (the caller's).
   */
  cleanup(): Promise<void>;
}

/** Mounts an overlay according to `plan` (creating its dirs and links). */
export async function mountOverlay(plan: OverlayPlan): Promise<void> {
  await mkdir(plan.target, { recursive: true });
  await mkdir(plan.upper, { recursive: true });
  await mkdir(plan.work, { recursive: true });
  if (plan.cwd) {
    await mkdir(join(plan.cwd, 'l'), { recursive: true });
    for (const l of plan.links) await symlink(l.target, join(plan.cwd, l.path));
  }
  if (plan.options.length > MOUNT_DATA_MAX) throw new RuntimeError('ROOTFS', `too many layers for one overlay mount (${plan.links.length})`);
  const mountIt = () => {
    try {
      mount('overlay', plan.target, 'overlay', 0, plan.options);
    } catch (e) {
      // kernels before 5.10 have no `volatile`: mount without it
      if (!plan.volatile || !(e instanceof RuntimeError) || e.errno !== 'EINVAL') throw e;
      mount('overlay', plan.target, 'overlay', 0, plan.options.slice(0, -',volatile'.length));
    }
  };
  if (!plan.cwd) {
    mountIt();
    return;
  }
  const prev = process.cwd();
  process.chdir(plan.cwd);
  try {
    mountIt();
  } finally {
    process.chdir(prev);
  }
}

/** Unmounts `target` (lazily when busy); ignores "not mounted". */
export function unmount(target: string): void {
  let err = umount2(target, 0);
  if (err === 'EBUSY') err = umount2(target, MNT_DETACH);
  if (err && err !== 'EINVAL' && err !== 'ENOENT') throw new RuntimeError('MOUNT', `unmounting ${target}: ${err}`, { step: 'umount', errno: err });
}

/**
 * Unpacks the image's layers into shared snapshots (once per diffId) and mounts an overlay
 * for one container under `containerDir`: `rootfs` (mount point), `upper`, `work`. The
 * builder's Executor uses the same call; `upper` is the container's diff.
 */
export async function prepareRootfs(snapshots: SnapshotStore, image: Image, containerDir: string, signal?: AbortSignal, opts: { volatile?: boolean } = {}): Promise<PreparedRootfs> {
  // Layers unpack independently: a few at a time (decompression and file creation overlap).
  const layers = await image.layers();
  const lowers: string[] = new Array(layers.length);
  let next = 0;
  const worker = async () => {
    while (next < layers.length) {
      const i = next++;
      lowers[i] = await snapshots.ensure(layers[i]!, signal);
    }
  };
  await Promise.all(Array.from({ length: Math.min(UNPACK_CONCURRENCY, layers.length) }, worker));
  if (lowers.length === 0) {
    // FROM scratch: overlay needs a lower directory
    const empty = join(containerDir, 'empty');
    await mkdir(empty, { recursive: true });
    lowers.push(empty);
  }
  const plan = planOverlay(lowers, containerDir, opts);
  let mounted = false;
  const cleanup = async () => {
    if (mounted) {
      unmount(plan.target);
      mounted = false;
    }
    await Promise.all([plan.target, plan.upper, plan.work, join(containerDir, 'l'), join(containerDir, 'empty')].map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    await mountOverlay(plan);
    mounted = true;
  } catch (e) {
    await cleanup().catch(() => undefined);
    throw e;
  }
  return { rootfs: plan.target, upper: plan.upper, cleanup };
}
