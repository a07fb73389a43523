import { TsbuildError } from '../../src/util/errors.js';
import type { SourceLocation } from '../dockerfile/errors.js';

/** Codes of {@link BuildError}. Stable. */
export type BuildErrorCode =
  /** A RUN exited non-zero. */
  | 'RUN_FAILED'
  /** A COPY/ADD source is missing or not usable. */
  | 'COPY_FAILED'
  /** A base image could not be found. */
  | 'BASE_NOT_FOUND'
  /** Something the builder does not implement yet. */
  | 'NOT_SUPPORTED'
  /** Setting up or tearing down a step failed. */
  | 'STEP_FAILED'
  /** Downloading an ADD URL or fetching an ADD git repository failed. */
  | 'FETCH_FAILED'
  /** An ADD `--checksum` did not match what was downloaded. */
  | 'CHECKSUM_MISMATCH'
  /** An ADD `--checksum` is malformed or given for a source that cannot have one. */
  | 'INVALID_CHECKSUM'
  /** A RUN needs something of the build host that is missing (an ssh agent, an emulator). */
  | 'UNAVAILABLE'
  | 'CANCELED';

/**
 * A build step failed. The message names the step (`[stage 2/4] RUN make`) and its location;
 * `output` holds the last lines the step printed.
 */
export class BuildError extends TsbuildError<BuildErrorCode> {
  readonly location?: SourceLocation;
  readonly step?: string;
  readonly processExitCode?: number;
  readonly output?: readonly string[];

  constructor(code: BuildErrorCode, message: string, opts: { cause?: unknown; location?: SourceLocation; step?: string; exitCode?: number; output?: readonly string[] } = {}) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (opts.location) this.location = opts.location;
    if (opts.step !== undefined) this.step = opts.step;
    if (opts.exitCode !== undefined) this.processExitCode = opts.exitCode;
    if (opts.output) this.output = opts.output;
  }
}
