import { TsbuildError, UsageError, formatErrorChain } from '../util/errors.js';

/**
 * Thrown (or returned through) by a command to end with a given status without an
 * error message, e.g. `tsbuild run` passing on the container's exit code.
 */
export class ExitStatus extends Error {
  constructor(readonly status: number) {
    super(`exit status ${status}`);
    this.name = 'ExitStatus';
  }
}

/** Exit status for an error: 2 for usage errors, 125 like docker for other tsbuild failures when asked, 1 otherwise. */
export function exitStatusFor(e: unknown): number {
  if (e instanceof ExitStatus) return e.status;
  if (e instanceof UsageError) return 2;
  const exit = (e as { exitCode?: unknown } | null)?.exitCode;
  if (typeof exit === 'number' && Number.isInteger(exit)) return exit;
  return 1;
}

/** The one-line message printed for an error: `tsbuild: <chain>` (+ code with --debug). */
export function errorMessage(e: unknown, debug: boolean): string {
  const chain = formatErrorChain(e);
  if (!debug) return `tsbuild: ${chain}`;
  const code = e instanceof TsbuildError ? ` [${e.code}]` : '';
  const stack = e instanceof Error && e.stack ? `\n${e.stack}` : '';
  return `tsbuild: ${chain}${code}${stack}`;
}

/** Sets the process exit status. The only place in tsbuild that decides how the process ends. */
export function finish(status: number): void {
  process.exitCode = status;
}
