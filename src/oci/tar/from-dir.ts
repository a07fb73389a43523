import type { Stats } from 'node:fs';
import { close as fsClose, open as fsOpen, constants as fsConstants } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
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

/** Files up to this size are read whole, ahead of the writer and in parallel. */
const SMALL_FILE = 256 << 10;
/** Entries looked at ahead of the writer. */
const READAHEAD_ENTRIES = 128;
/** Bytes of small-file content read ahead of the writer. */
const READAHEAD_BYTES = 16 << 20;

interface Node {
  rel: string;
  abs: string;
  st: Stats;
  /** Listing of a directory, started as soon as the directory was seen. */
  children?: Promise<Node[]>;
}

interface Pending {
  node: Node;
  content?: Promise<Buffer>;
  link?: Promise<string>;
  bytes: number;
}

/** Byte-wise (UTF-8) order of names, the order Go's filepath.Walk gives for ASCII names. */
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals UTF-8 byte order except around surrogates; fall back to bytes then.
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(a) && /^[\x00-\x7f]*$/.test(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function handled<T>(p: Promise<T>): Promise<T> {
  // The promise is awaited later; until then a rejection must not count as unhandled.
  p.catch(() => {});
  return p;
}

async function list(abs: string, rel: string, exclude: ((p: string) => boolean) | undefined): Promise<Node[]> {
  const names = (await readdir(abs)).sort(compareNames);
  const keep = exclude ? names.filter((n) => !exclude(rel ? `${rel}/${n}` : n)) : names;
  const prefix = abs.endsWith('/') ? abs : `${abs}/`;
  const stats = await Promise.all(keep.map((n) => lstat(prefix + n)));
  return keep.map((n, i) => {
    const node: Node = { rel: rel ? `${rel}/${n}` : n, abs: prefix + n, st: stats[i]! };
    if (node.st.isDirectory()) node.children = handled(list(node.abs, node.rel, exclude));
    return node;
  });
}

/** Every node of the tree in depth-first, name-sorted order; listings run ahead in parallel. */
async function* walk(nodes: Node[]): AsyncGenerator<Node> {
  for (const n of nodes) {
    yield n;
    if (n.children) yield* walk(await n.children);
  }
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
 * skipped. File bodies stream (small files are read ahead in parallel).
 *
 * The returned stream errors (instead of ending) if the walk or a read fails. Destroying it stops
 * the walk.
 */
export function tarDirectory(dir: string, opts?: TarDirectoryOptions): Readable {
  const w = new TarWriter(opts?.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {});
  produce(dir.replace(/\/+$/, '') || '/', w, opts ?? {}).catch((err: unknown) => w.abort(err as Error));
  return w.stream;
}

async function produce(root: string, w: TarWriter, opts: TarDirectoryOptions): Promise<void> {
  const overlay = opts.overlayUpper === true;
  const links = new Map<string, string>();
  const it = walk(await list(root, '', opts.exclude));
  const queue: Pending[] = [];
  let inflight = 0;
  let done = false;

  const refill = async (): Promise<void> => {
    while (!done && queue.length < READAHEAD_ENTRIES && inflight < READAHEAD_BYTES) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      const node = r.value;
      const p: Pending = { node, bytes: 0 };
      if (node.st.isFile() && node.st.size <= SMALL_FILE && node.st.size > 0 && !(node.st.nlink > 1)) {
        p.content = handled(readFile(node.abs, { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW }));
        p.bytes = node.st.size;
        inflight += p.bytes;
      } else if (node.st.isSymbolicLink()) {
        p.link = handled(readlink(node.abs));
      }
      queue.push(p);
    }
  };

  try {
    for (;;) {
      if (queue.length === 0 || (!done && queue.length < READAHEAD_ENTRIES / 2)) await refill();
      const p = queue.shift();
      if (!p) break;
      inflight -= p.bytes;
      await emit(p, w, overlay, links);
    }
    await w.finish();
  } finally {
    // Let read-ahead settle so no descriptor or promise outlives the stream.
    await Promise.all(queue.map((p) => p.content ?? p.link)).catch(() => {});
  }
}

async function emit(p: Pending, w: TarWriter, overlay: boolean, links: Map<string, string>): Promise<void> {
  const { node } = p;
  const st = node.st;
  const base: TarEntry = {
    path: node.rel,
    type: 'file',
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: Math.floor(st.mtimeMs / 1000),
  };

  // === overlay whiteouts, before hardlink detection: they may share one inode
  if (isWhiteoutDevice(st) && overlay) {
    const slash = node.rel.lastIndexOf('/');
    const name = node.rel.slice(slash + 1);
    await w.add({ ...base, path: `${node.rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${name}`, mode: 0, uid: 0, gid: 0 });
    return;
  }

  const { xattrs, opaque } = readXattrs(node.abs, overlay);
  if (xattrs) base.xattrs = xattrs;

  if (!st.isDirectory() && st.nlink > 1 && !isWhiteoutDevice(st)) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      await w.add({ ...base, type: 'hardlink', linkname: first });
      return;
    }
    links.set(key, node.rel);
  }

  if (st.isDirectory()) {
    await w.add({ ...base, type: 'dir' });
    if (opaque) await w.add({ path: `${node.rel}/${WHITEOUT_OPAQUE}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: base.mtime });
  } else if (st.isFile()) {
    if (p.content) {
      const buf = await p.content;
      await w.add({ ...base, size: buf.length }, buf);
    } else if (st.size === 0) {
      await w.add(base);
    } else {
      const fd = await openFd(node.abs);
      try {
        await w.addFromFd({ ...base, size: st.size }, fd);
      } finally {
        await closeFd(fd);
      }
    }
  } else if (st.isSymbolicLink()) {
    await w.add({ ...base, type: 'symlink', linkname: await (p.link ?? readlink(node.abs)) });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = splitDev(st.rdev);
    await w.add({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor });
  } else if (st.isFIFO()) {
    await w.add({ ...base, type: 'fifo' });
  }
  // sockets cannot be archived and are skipped (as Docker and GNU tar do)
}
