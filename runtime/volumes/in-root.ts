/**
 * File access inside a container's root from the host, with the kernel doing the containment:
 * every path is opened with openat2(2) `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` relative to a
 * directory fd of the root, so a symlink in the container (`/etc`, `../../..`, or one swapped in
 * while we walk: CVE-2019-14271, CVE-2021-30465) is resolved as if the root were `/` and can
 * never name a host path. Operations on a final component that must not follow it (lstat,
 * unlink, mkdir, symlink, lchown) go through `/proc/self/fd/<fd of the parent>/<name>`: the
 * magic link pins the parent that openat2 resolved, and the name is a single component.
 *
 * The fds are plain integers owned by the caller of each function; close them with
 * {@link closeFd}. Calls are synchronous on the main thread (short, path-based syscalls).
 */
import { closeSync, fstatSync, lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { errnoName } from '../../src/util/libc.js';
import { VolumeError } from './errors.js';

type Fn = (...args: unknown[]) => number | bigint;
let bound: { syscall: Fn; errno: () => number } | undefined;

function libc(): NonNullable<typeof bound> {
  if (bound) return bound;
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  bound = { syscall: lib.func('long syscall(long, ...)') as Fn, errno: () => koffi.errno() };
  return bound;
}

/** openat2's syscall number: 437 in the generic table every Linux architecture shares for new calls. */
const SYS_OPENAT2 = 437;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_IN_ROOT = 0x10;

/** open(2) flags used here (Linux values, x86_64 and arm64 alike). */
export const O = {
  RDONLY: 0, WRONLY: 1, CREAT: 0o100, EXCL: 0o200, TRUNC: 0o1000, NONBLOCK: 0o4000,
  DIRECTORY: 0o200000, NOFOLLOW: 0o400000, CLOEXEC: 0o2000000, PATH: 0o10000000,
} as const;

/** An errno failure of an in-root call; `code` is the errno name (ENOENT, ELOOP, EXDEV …). */
export class InRootError extends VolumeError {
  constructor(readonly errno: string, message: string) {
    super('IO', `${message}: ${errno}`);
  }
}

/**
 * Opens `path` (a container path; leading `/` optional) relative to `rootFd` with the root as
 * `/`. `flags` are open(2) flags (O_CLOEXEC is added); `mode` for O_CREAT. Retries EAGAIN (the
 * kernel's answer to a concurrent rename during `..` resolution). Throws {@link InRootError}.
 */
export function openInRoot(rootFd: number, path: string, flags: number, mode = 0): number {
  const l = libc();
  let rel = path.replace(/^\/+/, '');
  if (!rel) rel = '.';
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O.CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(flags & O.CREAT ? mode : 0), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
  for (let i = 0; ; i++) {
    const fd = Number(l.syscall(SYS_OPENAT2, 'int', rootFd, 'str', rel, 'void *', how, 'size_t', 24));
    if (fd >= 0) return fd;
    const e = errnoName(l.errno());
    if (e === 'EAGAIN' && i < 64) continue;
    throw new InRootError(e, `opening ${posix.normalize('/' + rel)} in the container`);
  }
}

/** Opens a directory of the host (the root itself) as a dirfd. */
export function openRootDir(hostPath: string): number {
  const l = libc();
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(O.PATH | O.DIRECTORY | O.CLOEXEC), 0);
  const fd = Number(l.syscall(SYS_OPENAT2, 'int', -100 /* AT_FDCWD */, 'str', hostPath, 'void *', how, 'size_t', 24));
  if (fd < 0) throw new InRootError(errnoName(l.errno()), `opening ${hostPath}`);
  return fd;
}

/** A path through which Node's fs calls reach what `fd` refers to. */
export function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** Closes an fd from this module; ignores errors. */
export function closeFd(fd: number | undefined): void {
  if (fd === undefined || fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** fstat of an fd (O_PATH fds included). */
export function fstatFd(fd: number): Stats {
  return fstatSync(fd);
}

/**
 * Splits a container path into its parent and last component (normalised, `..` folded the way
 * the container would see a lexical path). The root has no parent: returns name ''.
 */
export function splitPath(path: string): { parent: string; name: string } {
  const norm = posix.normalize('/' + path);
  if (norm === '/') return { parent: '/', name: '' };
  const trimmed = norm.endsWith('/') ? norm.slice(0, -1) : norm;
  return { parent: posix.dirname(trimmed), name: posix.basename(trimmed) };
}

/**
 * The parent directory of `path` opened O_PATH in the root, and the last component: the pair
 * every no-follow operation on `path` uses. The caller closes `fd`.
 */
export function openParent(rootFd: number, path: string): { fd: number; name: string } {
  const { parent, name } = splitPath(path);
  const fd = openInRoot(rootFd, parent, O.PATH | O.DIRECTORY);
  return { fd, name: name || '.' };
}

/**
 * Creates directory `path` and its missing parents inside the root (mode 0755, owned by the
 * caller), following symlinks *inside* the root, a dangling one included: `/data -> /srv/x`
 * with no /srv/x creates `<root>/srv/x`, as runc's securejoin MkdirAll does for mount targets.
 * Throws InRootError (ENOTDIR when a component is a file, ELOOP after 40 links).
 */
export function mkdirAllInRoot(rootFd: number, path: string): void {
  let todo = posix.normalize('/' + path).split('/').filter(Boolean);
  let cur = '/';
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '..') {
      cur = posix.dirname(cur);
      continue;
    }
    const next = posix.join(cur, part);
    let fd: number | undefined;
    try {
      fd = openInRoot(rootFd, next, O.PATH | O.DIRECTORY);
      cur = next;
      continue;
    } catch (e) {
      if (!(e instanceof InRootError) || e.errno !== 'ENOENT') throw e;
    } finally {
      closeFd(fd);
    }
    // missing, or a symlink whose target is missing: look at the component itself
    const pfd = openInRoot(rootFd, cur, O.PATH | O.DIRECTORY);
    try {
      let st: Stats | undefined;
      try {
        st = lstatSync(fdPath(pfd, part));
      } catch {
        st = undefined;
      }
      if (st?.isSymbolicLink()) {
        if (++links > 40) throw new InRootError('ELOOP', `creating ${path} in the container`);
        const target = readlinkSync(fdPath(pfd, part));
        todo = [...target.split('/').filter(Boolean), ...todo];
        if (target.startsWith('/')) cur = '/';
        continue;
      }
      try {
        mkdirSync(fdPath(pfd, part), { mode: 0o755 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new InRootError((e as NodeJS.ErrnoException).code ?? 'EIO', `creating ${next} in the container`);
      }
    } finally {
      closeFd(pfd);
    }
    cur = next;
  }
}
