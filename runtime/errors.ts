import { constants } from 'node:os';
import { TsbuildError } from '../src/util/errors.js';

/** Codes of {@link RuntimeError}: container lifecycle, the native helper, spec planning, cgroups, rootfs. */
export type RuntimeErrorCode =
  | 'SETUP_FAILED'        // the helper reported a failed setup step (see `step`, `errno`)
  | 'EXEC_FAILED'         // the setup succeeded but execve of process.args failed
  | 'HELPER_FAILED'       // the helper could not be started, broke the protocol or died
  | 'HELPER_NOT_FOUND'    // native/build/tsbuild-helper is missing (run the build)
  | 'INVALID_SPEC'        // config.json missing, unreadable or not a runtime spec
  | 'INVALID_ID'
  | 'CONTAINER_EXISTS'
  | 'CONTAINER_NOT_FOUND'
  | 'INVALID_STATE'       // the operation is not allowed in the container's current status
  | 'LOCKED'              // another process holds the container's lock
  | 'NOT_SUPPORTED'
  // planning and host resources (spec generation, cgroups, rootfs)
  | 'INVALID_USER'
  | 'INVALID_MOUNT'
  | 'INVALID_SECCOMP'
  | 'INVALID_RESOURCE'
  | 'NO_COMMAND'
  | 'CGROUP'
  | 'CGROUP_BUSY'
  | 'CGROUP_UNSUPPORTED'
  | 'MOUNT'
  | 'ROOTFS';

/**
 * A runtime failure. `step` names the setup step that failed (the helper's SetupStep:
 * 'mount', 'pivot_root', 'exec', ...), `errno` the kernel's answer as a name ('ENOENT') and
 * `errnoNumber` as a number, when there was one.
 */
export class RuntimeError extends TsbuildError<RuntimeErrorCode> {
  readonly step?: string;
  readonly errno?: string;
  readonly errnoNumber?: number;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown; step?: string; errno?: number | string }) {
    super(code, message, options);
    if (options?.step) this.step = options.step;
    const e = options?.errno ?? (options?.cause as NodeJS.ErrnoException | undefined)?.code;
    if (typeof e === 'number') {
      if (e !== 0) {
        this.errnoNumber = e;
        this.errno = errnoName(e);
      }
    } else if (e) {
      this.errno = e;
      const n = (constants.errno as Record<string, number>)[e];
      if (n !== undefined) this.errnoNumber = n;
    }
  }
}

/** The symbolic name of an errno number ('ENOENT'), or `E<n>` when unknown. */
export function errnoName(n: number): string {
  for (const [name, v] of Object.entries(constants.errno)) if (v === n) return name;
  return `E${n}`;
}
