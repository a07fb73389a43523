import { join } from 'node:path';

/**
 * Longest `data` string mount(2) accepts: the kernel copies one page, NUL included
 * (fs/namespace.c `copy_mount_options`). 4096 on x86_64 and arm64 with 4 KiB pages.
 */
export const MOUNT_DATA_MAX = 4095;

/** How to mount one container's overlay root. */
export interface OverlayPlan {
  /** Where the overlay is mounted. */
  target: string;
  upper: string;
  work: string;
  /** The mount data string (`lowerdir=…,upperdir=…,workdir=…`). */
  options: string;
  /** When set, `options` uses paths relative to this dir: chdir there for the mount call. */
  cwd?: string;
  /** Short symlinks to create first: name (relative to `cwd`) → lower directory. */
  links: { path: string; target: string }[];
  /** `options` ends with `,volatile` (see {@link planOverlay}). */
  volatile?: boolean;
}

function escapeLower(p: string): string {
  // overlayfs splits lowerdir on ':' and the option string on ','; both must be escaped.
  return p.replace(/\\/g, '\\\\').replace(/:/g, '\\:').replace(/,/g, '\\,');
}

/**
 * Plans the overlay for a container: `lowers` are snapshot dirs bottom-first (image layer
 * order) and become `lowerdir` top-first; upper and work live under `containerDir`. When the
 * absolute option string would exceed {@link MOUNT_DATA_MAX} (some 60 layers with long store
 * paths), the plan switches to short symlinks `l/<n>` in the container dir and relative paths,
 * mounted with the container dir as the working directory (the trick containerd and
 * containers/storage use). With `volatile` (Linux 5.10+) the overlay skips every sync of the
 * upper file system, unmount included: for containers whose upper is thrown away (`--rm`),
 * as podman does. Pure.
 */
export function planOverlay(lowers: readonly string[], containerDir: string, opts: { volatile?: boolean } = {}): OverlayPlan {
  const target = join(containerDir, 'rootfs');
  const upper = join(containerDir, 'upper');
  const work = join(containerDir, 'work');
  const topFirst = [...lowers].reverse();
  const tail = opts.volatile ? ',volatile' : '';
  const abs = `lowerdir=${topFirst.map(escapeLower).join(':')},upperdir=${escapeLower(upper)},workdir=${escapeLower(work)}${tail}`;
  if (abs.length <= MOUNT_DATA_MAX) return { target, upper, work, options: abs, links: [], ...(opts.volatile ? { volatile: true } : {}) };
  const links = topFirst.map((t, i) => ({ path: `l/${i.toString(36)}`, target: t }));
  const options = `lowerdir=${links.map((l) => l.path).join(':')},upperdir=upper,workdir=work${tail}`;
  return { target, upper, work, options, cwd: containerDir, links, ...(opts.volatile ? { volatile: true } : {}) };
}
