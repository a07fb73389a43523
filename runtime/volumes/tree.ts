/**
 * Tree copies between two roots, both reached through directory fds and openat2
 * RESOLVE_IN_ROOT (see in-root.ts): {@link walk} reads a tree fd by fd, never following the last
 * component; {@link writeItems} creates entries through the fd of their parent, resolved in the
 * destination root. Neither side can be steered out of its root by symlinks, present or swapped
 * in meanwhile (CVE-2019-14271, CVE-2018-15664 class). Used by `cp` and by volume copy-up.
 */
import { constants as fsc, createReadStream, createWriteStream, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, promises as fsp, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TarEntry } from '../../src/oci/tar/entry.js';
import { errnoName, mknod, S_IFBLK, S_IFCHR, S_IFIFO, splitDev } from '../../src/util/libc.js';
import { VolumeError } from './errors.js';
import { closeFd, fdPath, fstatFd, InRootError, mkdirAllInRoot, O, openInRoot, splitPath } from './in-root.js';

/** One entry of a copied tree, as a tar member (path relative to the copy's top, '' = the top). */
export interface Item { entry: TarEntry; body?: () => Readable }

function kindOf(st: Stats): TarEntry['type'] | undefined {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets: skipped, as tar does
}

export function ioError(e: unknown, what: string): never {
  if (e instanceof VolumeError && !(e instanceof InRootError)) throw e;
  const code = e instanceof InRootError ? e.errno : (e as NodeJS.ErrnoException).code;
  if (code === 'EROFS') throw new VolumeError('READ_ONLY', `${what}: the file system is read-only`, { cause: e });
  throw new VolumeError('IO', `${what}${code ? `: ${code}` : ''}`, { cause: e });
}

/**
 * Walks the tree at `path` inside the root `rootFd` (container path; with `follow` a symlink
 * at `path` itself is followed, inside the root). Yields the top first (path ''), parents
 * before children; file bodies are opened lazily through the parent's fd with O_NOFOLLOW.
 */
export async function* walk(rootFd: number, path: string, follow: boolean, what: string): AsyncGenerator<Item> {
  let top: number;
  try {
    top = openInRoot(rootFd, path, O.PATH | (follow ? 0 : O.NOFOLLOW));
  } catch (e) {
    if (e instanceof InRootError && (e.errno === 'ENOENT' || e.errno === 'ENOTDIR')) throw new VolumeError('PATH_NOT_FOUND', `could not find the file ${path} in ${what}`);
    ioError(e, `opening ${path} in ${what}`);
  }
  const links = new Map<string, string>();
  try {
    yield* walkFd(top, '', links, what, path);
  } finally {
    closeFd(top);
  }
}

async function* walkFd(fd: number, rel: string, links: Map<string, string>, what: string, shown: string): AsyncGenerator<Item> {
  const st = fstatFd(fd);
  const type = kindOf(st);
  if (!type) return;
  const base = { path: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
  if (type === 'symlink') {
    yield { entry: { ...base, type, linkname: await readlinkFd(fd, shown) } };
    return;
  }
  if (type !== 'dir' && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      yield { entry: { ...base, type: 'hardlink', linkname: first } };
      return;
    }
    links.set(key, rel);
  }
  if (type === 'file') {
    yield {
      entry: { ...base, type, size: st.size },
      // opened while `fd` is still held (the consumer reads a body before the next item):
      // /proc/self/fd/N re-opens exactly the inode walked, whatever the path shows meanwhile
      body: () => createReadStream('', { fd: openSync(fdPath(fd), fsc.O_RDONLY | fsc.O_NONBLOCK), autoClose: true, start: 0, end: Math.max(0, st.size - 1) }),
    };
    return;
  }
  if (type === 'char' || type === 'block') {
    const { major, minor } = splitDev(st.rdev);
    yield { entry: { ...base, type, devmajor: major, devminor: minor } };
    return;
  }
  if (type === 'fifo') {
    yield { entry: { ...base, type } };
    return;
  }
  yield { entry: { ...base, type: 'dir' } };
  const names = (await fsp.readdir(fdPath(fd))).sort();
  for (const name of names) {
    let cfd: number;
    try {
      cfd = openInRoot(fd, name, O.PATH | O.NOFOLLOW);
    } catch (e) {
      if (e instanceof InRootError && e.errno === 'ENOENT') continue; // removed meanwhile
      ioError(e, `opening ${posix.join(shown, name)} in ${what}`);
    }
    try {
      yield* walkFd(cfd, rel ? `${rel}/${name}` : name, links, what, posix.join(shown, name));
    } finally {
      closeFd(cfd);
    }
  }
}

/** The target of the symlink an O_PATH|O_NOFOLLOW fd refers to: readlinkat(fd, ""). */
async function readlinkFd(fd: number, shown: string): Promise<string> {
  // readlink of /proc/self/fd/N would give the magic link's text, not the symlink's
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  readlinkat ??= koffi.load('libc.so.6').func('long readlinkat(int, const char *, _Out_ uint8_t *buf, size_t)') as (...a: unknown[]) => number;
  const buf = Buffer.alloc(4096);
  const n = Number(readlinkat(fd, '', buf, buf.length));
  if (n < 0) throw new VolumeError('IO', `reading the symlink ${shown}: ${errnoName(koffi.errno())}`);
  return buf.subarray(0, n).toString();
}
let readlinkat: ((...a: unknown[]) => number) | undefined;

/** Stat of `path` in the root without following its last component (undefined when missing). */
export function statIn(rootFd: number, path: string, follow = false): Stats | undefined {
  let fd: number;
  try {
    fd = openInRoot(rootFd, path, O.PATH | (follow ? 0 : O.NOFOLLOW));
  } catch (e) {
    if (e instanceof InRootError && (e.errno === 'ENOENT' || e.errno === 'ENOTDIR')) return undefined;
    throw e;
  }
  try {
    return fstatFd(fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * Writes items into the root `rootFd`: each lands at `target(item path)` (a path in that root;
 * undefined drops the item). Missing parents are created in the root; an existing non-directory
 * is replaced, an existing directory merged into. `owner`: 'keep' the items' uid/gid, a fixed
 * owner, or none (the caller's). Directory times are set last.
 */
export async function writeItems(rootFd: number, items: AsyncIterable<Item>, target: (rel: string) => string | undefined, opts: { owner?: 'keep' | { uid: number; gid: number }; what: string }): Promise<void> {
  const dirTimes: { path: string; mtime: number; mode: number }[] = [];
  for await (const { entry, body } of items) {
    const dest = target(entry.path);
    if (dest === undefined) {
      body?.().destroy();
      continue;
    }
    const { parent, name } = splitPath(dest);
    if (!name) {
      // the root itself: only a directory merges into it
      if (entry.type !== 'dir') throw new VolumeError('INVALID_COPY', `cannot overwrite the root directory of ${opts.what} with a non-directory`);
      continue;
    }
    let pfd: number;
    try {
      pfd = openInRoot(rootFd, parent, O.PATH | O.DIRECTORY);
    } catch (e) {
      if (e instanceof InRootError && e.errno === 'ENOENT') {
        mkdirAllInRoot(rootFd, parent);
        pfd = openInRoot(rootFd, parent, O.PATH | O.DIRECTORY);
      } else ioError(e, `opening ${parent} in ${opts.what}`);
    }
    try {
      await writeOne(pfd, name, entry, body, dest, target, rootFd, opts, dirTimes);
    } catch (e) {
      ioError(e, `writing ${dest} in ${opts.what}`);
    } finally {
      closeFd(pfd);
    }
  }
  // directory times last: writing children changed them
  for (const d of dirTimes.reverse()) {
    let fd: number | undefined;
    try {
      fd = openInRoot(rootFd, d.path, O.RDONLY | O.DIRECTORY | O.NOFOLLOW);
      futimesSync(fd, d.mtime, d.mtime);
    } catch {
      /* best effort, like tar */
    } finally {
      closeFd(fd);
    }
  }
}

async function writeOne(
  pfd: number, name: string, entry: TarEntry, body: (() => Readable) | undefined, dest: string, target: (rel: string) => string | undefined,
  rootFd: number, opts: { owner?: 'keep' | { uid: number; gid: number }; what: string }, dirTimes: { path: string; mtime: number; mode: number }[],
): Promise<void> {
  const at = fdPath(pfd, name);
  const owner = opts.owner === 'keep' ? { uid: entry.uid, gid: entry.gid } : opts.owner;
  const existing = (() => {
    try {
      return statIn(pfd, name);
    } catch {
      return undefined;
    }
  })();
  if (entry.type === 'dir') {
    if (existing && !existing.isDirectory()) unlinkSync(at);
    if (!existing || !existing.isDirectory()) mkdirSync(at, { mode: 0o700 });
    if (!existing || !existing.isDirectory()) {
      const dfd = openInRoot(pfd, name, O.RDONLY | O.DIRECTORY | O.NOFOLLOW);
      try {
        if (owner) fchownSync(dfd, owner.uid, owner.gid);
        fchmodSync(dfd, entry.mode);
      } finally {
        closeFd(dfd);
      }
      dirTimes.push({ path: dest, mtime: entry.mtime, mode: entry.mode });
    }
    return;
  }
  if (existing?.isDirectory()) {
    body?.().destroy();
    throw new VolumeError('INVALID_COPY', `cannot overwrite directory ${dest} with non-directory`);
  }
  if (existing) unlinkSync(at);
  switch (entry.type) {
    case 'file': {
      const fd = openInRoot(pfd, name, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW, 0o600);
      const out = createWriteStream('', { fd, autoClose: false });
      try {
        await pipeline(body ? body() : Readable.from([]), out);
        if (owner) fchownSync(fd, owner.uid, owner.gid);
        fchmodSync(fd, entry.mode);
        futimesSync(fd, entry.mtime, entry.mtime);
      } finally {
        closeFd(fd);
      }
      return;
    }
    case 'symlink':
      symlinkSync(entry.linkname ?? '', at);
      if (owner) lchownSync(at, owner.uid, owner.gid);
      lutimesSync(at, entry.mtime, entry.mtime);
      return;
    case 'hardlink': {
      const to = target(entry.linkname ?? '');
      if (to === undefined) throw new VolumeError('INVALID_COPY', `hard link ${dest} points outside the copy`);
      const { parent, name: n } = splitPath(to);
      const ofd = openInRoot(rootFd, parent, O.PATH | O.DIRECTORY);
      try {
        linkSync(fdPath(ofd, n), at);
      } finally {
        closeFd(ofd);
      }
      return;
    }
    case 'char': case 'block': case 'fifo': {
      const type = entry.type === 'char' ? S_IFCHR : entry.type === 'block' ? S_IFBLK : S_IFIFO;
      mknod(at, type, entry.mode, entry.devmajor ?? 0, entry.devminor ?? 0);
      if (owner) lchownSync(at, owner.uid, owner.gid);
      return;
    }
  }
}

