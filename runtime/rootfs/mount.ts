/**
 * mount(2) and umount2(2) through koffi (src/util/libc.ts has no mount binding). Called
 * synchronously from the main thread: Node's worker threads may sit in other mount namespaces
 * only if someone unshared them, and tsbuild never does that in-process.
 */
import { createRequire } from 'node:module';
import { RuntimeError } from '../spec/errors.js';
import { errnoName } from '../../src/util/libc.js';

type Fn = (...args: unknown[]) => number;
let bound: { mount: Fn; umount2: Fn; errno: () => number } | undefined;

function libc(): NonNullable<typeof bound> {
  if (bound) return bound;
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  bound = {
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)') as Fn,
    umount2: lib.func('int umount2(const char *target, int flags)') as Fn,
    errno: () => koffi.errno(),
  };
  return bound;
}

/** umount2 flag: lazy detach. */
export const MNT_DETACH = 2;
/** Read-only mount flag. */
export const MS_RDONLY = 1;

/** mount(2). Throws RuntimeError MOUNT naming the target, with the errno name. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string | null): void {
  const l = libc();
  if (l.mount(source, target, fstype, flags, data) !== 0) {
    const errno = errnoName(l.errno());
    throw new RuntimeError('MOUNT', `mounting ${fstype} on ${target}: ${errno}`, { step: 'mount', errno });
  }
}

/** umount2(2). Returns the errno name on failure instead of throwing (callers decide). */
export function umount2(target: string, flags = 0): string | undefined {
  const l = libc();
  return l.umount2(target, flags) === 0 ? undefined : errnoName(l.errno());
}
