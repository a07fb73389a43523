import { TsbuildError } from '../../src/util/errors.js';

/** Codes of {@link DockerfileError}. Stable; the CLI maps them to exit statuses. */
export type DockerfileErrorCode =
  | 'PARSE_ERROR'
  | 'UNKNOWN_INSTRUCTION'
  | 'UNKNOWN_FLAG'
  | 'INVALID_FLAG'
  | 'INVALID_INSTRUCTION'
  | 'EXPANSION_ERROR'
  | 'UNKNOWN_STAGE'
  | 'STAGE_CYCLE'
  | 'INVALID_DOCKERIGNORE'
  | 'INVALID_PATTERN';

/** A position in a Dockerfile. Lines and columns are 1-based; `endLine` is the last line of the instruction. */
export interface SourceLocation {
  readonly file?: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
}

/** Options of {@link DockerfileError}. */
export interface DockerfileErrorOptions {
  readonly location?: SourceLocation;
  /** The offending text (instruction name, flag, word). */
  readonly text?: string;
  /** A did-you-mean suggestion; rendered as ` (did you mean X?)`. */
  readonly suggestion?: string;
  readonly cause?: unknown;
}

/**
 * An error in a Dockerfile, optionally located. The message is
 * `Dockerfile:12:5: unknown instruction: RUNN (did you mean RUN?)` once located,
 * and just the detail before that. Inner parsing helpers throw unlocated
 * errors; the instruction boundary attaches the location once with
 * {@link withLocation} (buildkit `parser.WithLocation`).
 */
export class DockerfileError extends TsbuildError<DockerfileErrorCode> {
  readonly location?: SourceLocation;
  readonly text?: string;
  readonly suggestion?: string;
  /** The message without location prefix and without suggestion. */
  readonly detail: string;

  constructor(code: DockerfileErrorCode, detail: string, opts: DockerfileErrorOptions = {}) {
    super(code, renderMessage(detail, opts), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.detail = detail;
    if (opts.location) this.location = opts.location;
    if (opts.text !== undefined) this.text = opts.text;
    if (opts.suggestion !== undefined) this.suggestion = opts.suggestion;
  }
}

function renderMessage(detail: string, opts: DockerfileErrorOptions): string {
  let msg = detail;
  if (opts.suggestion) msg += ` (did you mean ${opts.suggestion}?)`;
  if (opts.location) {
    const l = opts.location;
    msg = `${l.file ?? 'Dockerfile'}:${l.line}:${l.column}: ${msg}`;
  }
  return msg;
}

/**
 * Returns `err` located at `loc`. A DockerfileError that already carries a
 * location is returned unchanged (the location is attached once, at the
 * innermost instruction boundary). Other errors are wrapped as PARSE_ERROR.
 * When `err.text` is found on the instruction's first line, the column points at it.
 */
export function withLocation(err: unknown, loc: SourceLocation, firstLine?: string): DockerfileError {
  if (err instanceof DockerfileError) {
    if (err.location) return err;
    let column = loc.column;
    if (firstLine !== undefined && err.text) {
      // search after the keyword's first character, so a trigger named like its
      // instruction (ONBUILD ONBUILD) points at the second one
      const i = firstLine.indexOf(err.text, loc.column);
      if (i >= 0) column = i + 1;
    }
    return new DockerfileError(err.code, err.detail, {
      location: { ...loc, column },
      ...(err.text !== undefined ? { text: err.text } : {}),
      ...(err.suggestion !== undefined ? { suggestion: err.suggestion } : {}),
      ...(err.cause !== undefined ? { cause: err.cause } : {}),
    });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new DockerfileError('PARSE_ERROR', detail, { location: loc, cause: err });
}

/** Levenshtein distance between two strings (by UTF-16 unit; names are ASCII). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[n]!;
}

/**
 * The closest option to `value` with an edit distance below 3, or undefined
 * (buildkit `suggest.Search`). An exact match yields undefined because the
 * error is then unrelated to the spelling. Case-insensitive search returns the
 * option in the case style of `value` (all lower / all upper).
 */
export function suggest(value: string, options: readonly string[], caseSensitive: boolean): string | undefined {
  const v = caseSensitive ? value : value.toLowerCase();
  let match: string | undefined;
  let min = 3;
  for (const o of [...options].sort()) {
    const opt = caseSensitive ? o : o.toLowerCase();
    if (opt === v) return undefined;
    const d = editDistance(v, opt);
    if (d < min) {
      min = d;
      match = caseSensitive ? opt : matchCase(opt, value);
    }
  }
  return match;
}

function matchCase(val: string, orig: string): string {
  if (orig === orig.toLowerCase()) return val.toLowerCase();
  if (orig === orig.toUpperCase()) return val.toUpperCase();
  return val;
}
