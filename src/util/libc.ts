/**
 * Thin bindings to the few libc calls Node has no API for: extended attributes that do not
 * follow symlinks (`lgetxattr`, `lsetxattr`, `llistxattr`) and `mknod` (device nodes, fifos,
 * overlay whiteouts). Used to pack and unpack layer tars.
 *
 * NOTE: architecture exception: this is the only file under src/util allowed to import
 * `koffi` (a foreign function interface). It is loaded lazily on the first call, so importing
 * src/util never loads koffi. The calls are synchronous and made from the calling (main)
 * thread: these syscalls are short and path-based, and doing them on the main thread keeps
 * them in the process's mount namespace (see notes on per-thread namespaces).
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { TsbuildError } from './errors.js';

/**
 * A failed libc call. `code` is the errno name (`ENOENT`, `ENODATA`, `EPERM`, …), as in
 * Node's own fs errors, so callers can branch on it.
 */
export class SyscallError extends TsbuildError<string> {
  /** The positive errno value. */
  readonly errno: number;
  /** The libc function that failed. */
  readonly syscall: string;
  /** The path it was called on. */
  readonly path: string;

  constructor(syscall: string, errno: number, path: string, detail?: string) {
    const name = errnoName(errno);
    super(name, `${syscall} ${path}${detail ? ` (${detail})` : ''}: ${name}`);
    this.errno = errno;
    this.syscall = syscall;
    this.path = path;
  }
}

let errnoNames: Map<number, string> | undefined;

/** The symbolic name of an errno value (`2` → `ENOENT`); `ERRNO_<n>` when unknown. */
export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    for (const [k, v] of Object.entries(osConstants.errno)) if (!errnoNames.has(v)) errnoNames.set(v, k);
  }
  return errnoNames.get(errno) ?? `ERRNO_${errno}`;
}

type Fn = (...args: unknown[]) => number;
interface Bindings {
  errno(): number;
  lgetxattr: Fn;
  lsetxattr: Fn;
  llistxattr: Fn;
  lremovexattr: Fn;
  mknod: Fn;
}

let bindings: Bindings | undefined;

function libc(): Bindings {
  if (bindings) return bindings;
  const require = createRequire(import.meta.url);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  bindings = {
    errno: () => koffi.errno(),
    lgetxattr: lib.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)') as Fn,
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as Fn,
    llistxattr: lib.func('intptr_t llistxattr(const char *path, void *list, size_t size)') as Fn,
    lremovexattr: lib.func('int lremovexattr(const char *path, const char *name)') as Fn,
    mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)') as Fn,
  };
  return bindings;
}

const ERANGE = osConstants.errno.ERANGE;
const ENODATA = osConstants.errno.ENODATA;

/**
 * Names of the extended attributes of `path` (not following a final symlink). Returns an empty
 * list when the filesystem does not support xattrs (ENOTSUP). Throws SyscallError otherwise.
 */
export function llistxattr(path: string): string[] {
  const c = libc();
  let size = 1024;
  for (let attempt = 0; attempt < 8; attempt++) {
    const buf = Buffer.allocUnsafe(size);
    const n = c.llistxattr(path, buf, size);
    if (n >= 0) {
      if (n === 0) return [];
      const names = buf.toString('latin1', 0, n).split('\0');
      names.pop(); // trailing NUL
      // Names are bytes; decode them as UTF-8 (ASCII in practice).
      return names.map((s) => Buffer.from(s, 'latin1').toString('utf8'));
    }
    const e = c.errno();
    if (e === ERANGE) {
      const need = c.llistxattr(path, null, 0);
      size = need > size ? need : size * 2;
      continue;
    }
    if (e === osConstants.errno.ENOTSUP) return [];
    throw new SyscallError('llistxattr', e, path);
  }
  throw new SyscallError('llistxattr', ERANGE, path, 'attribute list keeps growing');
}

/**
 * The value of extended attribute `name` of `path` (not following a final symlink), byte-exact,
 * or undefined when it is not set (ENODATA). Throws SyscallError otherwise.
 */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const c = libc();
  let size = 256;
  for (let attempt = 0; attempt < 8; attempt++) {
    const buf = Buffer.allocUnsafe(size);
    const n = c.lgetxattr(path, name, buf, size);
    if (n >= 0) return Buffer.from(buf.subarray(0, n));
    const e = c.errno();
    if (e === ENODATA) return undefined;
    if (e === ERANGE) {
      const need = c.lgetxattr(path, name, null, 0);
      size = need > size ? need : size * 2;
      continue;
    }
    throw new SyscallError('lgetxattr', e, path, name);
  }
  throw new SyscallError('lgetxattr', ERANGE, path, name);
}

/** Sets extended attribute `name` of `path` to exactly `value` (not following a final symlink). */
export function lsetxattr(path: string, name: string, value: Uint8Array, flags = 0): void {
  const c = libc();
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (c.lsetxattr(path, name, buf, buf.length, flags) !== 0) throw new SyscallError('lsetxattr', c.errno(), path, name);
}

/** Removes extended attribute `name` of `path`; no error when it was not set. */
export function lremovexattr(path: string, name: string): void {
  const c = libc();
  if (c.lremovexattr(path, name) !== 0) {
    const e = c.errno();
    if (e !== ENODATA) throw new SyscallError('lremovexattr', e, path, name);
  }
}

/** File type bits for {@link mknod}'s `mode` (sys/stat.h). */
export const S_IFCHR = 0o020000;
/** Block device type bits. */
export const S_IFBLK = 0o060000;
/** FIFO type bits. */
export const S_IFIFO = 0o010000;

/** glibc's `makedev(major, minor)` as a 64-bit dev_t. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** glibc's `major(dev)` / `minor(dev)` of a dev_t (as given by fs.Stats.rdev). */
export function splitDev(dev: number | bigint): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
  const minor = Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
  return { major, minor };
}

/**
 * Creates a device node or fifo at `path` (`type` is one of S_IFCHR, S_IFBLK, S_IFIFO; `perm`
 * the permission bits, still subject to the umask). Fails with EEXIST if `path` exists.
 */
export function mknod(path: string, type: number, perm: number, major = 0, minor = 0): void {
  const c = libc();
  if (c.mknod(path, (type | (perm & 0o7777)) >>> 0, makedev(major, minor)) !== 0) {
    throw new SyscallError('mknod', c.errno(), path);
  }
}
