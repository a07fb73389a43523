import type { Stats } from 'node:fs';
import { close as fsClose, closeSync, open as fsOpen, openSync, lstatSync, readdirSync, readlinkSync, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';
import { llistxattr, lgetxattr, splitDev } from '../../util/libc.js';
import type { TarEntry } from './entry.js';
import { OVERLAY_OPAQUE_XATTR, OVERLAY_USER_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './entry.js';
import { TarWriter } from './writer.js';

/** Options of {@link tarDirectory}. */
export interface TarDirectoryOptions {
  /**
   * The tree is an overlayfs upper directory: char 0/0 devices become `.wh.<name>` entries and
   * directories marked opaque (`trusted.overlay.opaque=y`, or `user.overlay.opaque=y`) get a
   * `<dir>/.wh..wh..opq` entry (image-spec layer.md#whiteouts).
   */
  overlayUpper?: boolean;
  /** Clamp mtimes to at most this value (seconds). */
  sourceDateEpoch?: number;
  /** Paths (relative, `/`-separated) for which this returns true are left out, with their subtree. */
  exclude?: (relPath: string) => boolean;
}

/** Files up to this size are read synchronously, straight into the output buffer. */
const SYNC_FILE = 256 << 10;
/** Entries between explicit yields to the event loop. */
const YIELD_EVERY = 256;

/** Byte-wise (UTF-8) order of names, the order Go's filepath.Walk gives for ASCII names. */
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals UTF-8 byte order except around surrogates; fall back to bytes then.
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(a) && /^[\x00-\x7f]*$/.test(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isWhiteoutDevice(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function readXattrs(path: string, overlayUpper: boolean): { xattrs?: Map<string, Buffer>; opaque: boolean } {
  const names = llistxattr(path);
  if (names.length === 0) return { opaque: false };
  let opaque = false;
  let xattrs: Map<string, Buffer> | undefined;
  for (const name of names.sort()) {
    const isOverlay = name.startsWith('trusted.overlay.') || (overlayUpper && name.startsWith('user.overlay.'));
    if (isOverlay) {
      if (overlayUpper && (name === OVERLAY_OPAQUE_XATTR || name === OVERLAY_USER_OPAQUE_XATTR)) {
        const v = lgetxattr(path, name);
        if (v && v.toString('latin1') === 'y') opaque = true;
      }
      continue; // overlayfs bookkeeping (origin, impure, redirect, ...) is host-specific
    }
    const v = lgetxattr(path, name);
    if (v !== undefined) (xattrs ??= new Map()).set(name, v);
  }
  return xattrs ? { xattrs, opaque } : { opaque };
}

function openFd(path: string): Promise<number> {
  return new Promise((resolve, reject) =>
    fsOpen(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fsClose(fd, () => resolve()));
}

/**
 * A deterministic layer tar of the tree under `dir` (the root itself is not an entry): entries in
 * depth-first order with names sorted by bytes, directories before their content, uname/gname
 * empty, mtimes in whole seconds (clamped by `sourceDateEpoch`), xattrs kept byte-exact except
 * overlayfs bookkeeping (`trusted.overlay.*`), files with several links written once and then as
 * hardlinks (by device and inode; overlay whiteouts excluded, they share an inode). Sockets are
 * skipped. Bodies stream: small files (≤ 256 KiB) are read synchronously into the output buffer,
 * larger ones asynchronously in 1 MiB pieces; metadata calls are synchronous (see produce).
 *
 * The returned stream errors (instead of ending) if the walk or a read fails. Destroying it stops
 * the walk.
 */
export function tarDirectory(dir: string, opts?: TarDirectoryOptions): Readable {
  const w = new TarWriter(opts?.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {});
  produce(dir.replace(/\/+$/, '') || '/', w, opts ?? {}).catch((err: unknown) => w.abort(err as Error));
  return w.stream;
}

interface Walk {
  w: TarWriter;
  overlay: boolean;
  exclude: ((p: string) => boolean) | undefined;
  links: Map<string, string>;
  count: number;
}

async function produce(root: string, w: TarWriter, opts: TarDirectoryOptions): Promise<void> {
  // NOTE: metadata calls are synchronous on purpose. A thread-pool round trip per lstat costs
  // several times the syscall (measured: async walk of 54k entries 3.3 s, sync 0.8 s); the walk
  // yields to the event loop every few hundred entries and whenever the consumer is behind.
  const walk: Walk = { w, overlay: opts.overlayUpper === true, exclude: opts.exclude, links: new Map(), count: 0 };
  await visit(walk, root.endsWith('/') ? root : `${root}/`, '');
  await w.finish();
}

async function visit(walk: Walk, absPrefix: string, relPrefix: string): Promise<void> {
  const names = readdirSync(absPrefix).sort(compareNames);
  for (const name of names) {
    const rel = relPrefix + name;
    if (walk.exclude?.(rel)) continue;
    const abs = absPrefix + name;
    const st = lstatSync(abs);
    if (++walk.count % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
    await emit(walk, abs, rel, st);
    if (st.isDirectory()) await visit(walk, `${abs}/`, `${rel}/`);
  }
}

async function emit(walk: Walk, abs: string, rel: string, st: Stats): Promise<void> {
  const { w, overlay, links } = walk;
  const base: TarEntry = {
    path: rel,
    type: 'file',
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: Math.floor(st.mtimeMs / 1000),
  };

  // === overlay whiteouts, before hardlink detection: they may share one inode
  if (isWhiteoutDevice(st) && overlay) {
    const slash = rel.lastIndexOf('/');
    await w.add({ ...base, path: `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`, mode: 0, uid: 0, gid: 0 });
    return;
  }

  const { xattrs, opaque } = readXattrs(abs, overlay);
  if (xattrs) base.xattrs = xattrs;

  if (!st.isDirectory() && st.nlink > 1 && !isWhiteoutDevice(st)) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      await w.add({ ...base, type: 'hardlink', linkname: first });
      return;
    }
    links.set(key, rel);
  }

  if (st.isDirectory()) {
    await w.add({ ...base, type: 'dir' });
    if (opaque) await w.add({ path: `${rel}/${WHITEOUT_OPAQUE}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: base.mtime });
  } else if (st.isFile()) {
    if (st.size === 0) {
      await w.add(base);
    } else if (st.size <= SYNC_FILE) {
      const fd = openSync(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      try {
        await w.addFromFd({ ...base, size: st.size }, fd, true);
      } finally {
        closeSync(fd);
      }
    } else {
      const fd = await openFd(abs);
      try {
        await w.addFromFd({ ...base, size: st.size }, fd);
      } finally {
        await closeFd(fd);
      }
    }
  } else if (st.isSymbolicLink()) {
    await w.add({ ...base, type: 'symlink', linkname: readlinkSync(abs) });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = splitDev(st.rdev);
    await w.add({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor });
  } else if (st.isFIFO()) {
    await w.add({ ...base, type: 'fifo' });
  }
  // sockets cannot be archived and are skipped (as Docker and GNU tar do)
}
