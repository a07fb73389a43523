/**
 * The one error base of tsbuild. Every error the library throws is a TsbuildError
 * subclass with a stable SCREAMING_SNAKE `code`; the CLI maps codes to exit
 * statuses (src/cli/exit.ts) and prints the `cause` chain joined by ": ".
 */
export class TsbuildError<C extends string = string> extends Error {
  readonly code: C;
  /** A failure during cleanup after this error; never replaces the primary error. */
  cleanupError?: unknown;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Codes of {@link ContentError}: blobs, descriptors, tars, stores. */
export type ContentErrorCode =
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'NOT_FOUND'
  | 'INVALID_DESCRIPTOR'
  | 'INVALID_DIGEST'
  | 'INVALID_MANIFEST'
  | 'INVALID_CONFIG'
  | 'INVALID_REFERENCE'
  | 'INVALID_TAR'
  | 'UNSAFE_PATH'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_ARCHIVE'
  | 'IN_USE'
  | 'CONSUMED'
  | 'LOCKED'
  | 'IO';

/** Errors of the data model and the stores (umoci `hardening`, containers/image `digestingReader`). */
export class ContentError extends TsbuildError<ContentErrorCode> {}

/** Codes of {@link UsageError}. */
export type UsageErrorCode = 'INVALID_ARGUMENT' | 'UNKNOWN_COMMAND' | 'NOT_SUPPORTED';

/** A caller passed something malformed (flags, option values). Exit status 2. */
export class UsageError extends TsbuildError<UsageErrorCode> {}

/** True when `e` is a TsbuildError (of any subclass) carrying `code`. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof TsbuildError && e.code === code;
}

/** Renders an error and its `cause` chain as one line: "a: b: c" (Go's %w chains); a cause whose message an outer one already contains is not repeated. */
export function formatErrorChain(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  const seen = new Set<unknown>();
  while (cur !== undefined && cur !== null && !seen.has(cur)) {
    seen.add(cur);
    if (cur instanceof Error) {
      const msg = cur.message;
      if (msg && !parts.some((p) => p.includes(msg))) parts.push(msg);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': ');
}
