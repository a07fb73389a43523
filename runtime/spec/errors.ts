import { TsbuildError } from '../../src/util/errors.js';

/** Codes of {@link RuntimeError} raised while planning and running containers. */
export type RuntimeErrorCode =
  | 'INVALID_SPEC'
  | 'INVALID_USER'
  | 'INVALID_MOUNT'
  | 'INVALID_SECCOMP'
  | 'INVALID_RESOURCE'
  | 'NO_COMMAND'
  | 'CGROUP'
  | 'CGROUP_BUSY'
  | 'CGROUP_UNSUPPORTED'
  | 'MOUNT'
  | 'ROOTFS'
  | 'NOT_SUPPORTED'
  | 'CONTAINER_EXISTS';

/**
 * Runtime failures (spec generation, cgroups, rootfs). `step` names the operation
 * (`'mount'`, `'cgroup'`, ...) and `errno` the kernel's answer, when there was one.
 */
export class RuntimeError extends TsbuildError<RuntimeErrorCode> {
  readonly step?: string;
  readonly errno?: string;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown; step?: string; errno?: string }) {
    super(code, message, options);
    if (options?.step) this.step = options.step;
    const errno = options?.errno ?? (options?.cause as NodeJS.ErrnoException | undefined)?.code;
    if (errno) this.errno = errno;
  }
}
