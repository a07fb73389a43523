import { TsbuildError } from '../../src/util/errors.js';

/**
 * Error codes of the distribution spec ("Error Codes" table) plus Docker's extra ones, followed
 * by the client-side codes of tsbuild's registry client.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
 */
export type DistributionErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_UNVERIFIED'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UNAVAILABLE'
  | 'UNKNOWN';

/** Codes raised by the client itself (no registry error body to go by). */
export type ClientErrorCode =
  | 'NETWORK'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'UNEXPECTED_STATUS'
  | 'INVALID_RESPONSE'
  | 'MANIFEST_TOO_LARGE'
  | 'TOO_MANY_REDIRECTS'
  | 'CREDENTIAL_HELPER'
  | 'INVALID_AUTH_CONFIG';

/** Every code a {@link RegistryError} may carry. */
export type RegistryErrorCode = DistributionErrorCode | ClientErrorCode;

const DISTRIBUTION_CODES: ReadonlySet<string> = new Set<DistributionErrorCode>([
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_UNVERIFIED', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID',
  'TAG_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'RANGE_INVALID',
  'PAGINATION_NUMBER_INVALID', 'UNAVAILABLE', 'UNKNOWN',
]);

/** One entry of a registry's `{"errors":[...]}` body. */
export interface Diagnostic {
  readonly code: string;
  readonly message?: string;
  readonly detail?: unknown;
}

/** HTTP statuses that are worth retrying (ggcr transport.temporaryStatusCodes). */
export const TEMPORARY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);
const TEMPORARY_CODES: ReadonlySet<string> = new Set(['TOOMANYREQUESTS', 'UNAVAILABLE', 'NETWORK', 'TIMEOUT']);

/** Fields of a {@link RegistryError} besides code and message. */
export interface RegistryErrorInit {
  readonly status?: number;
  readonly method?: string;
  readonly url?: string | URL;
  readonly ref?: string;
  readonly diagnostics?: readonly Diagnostic[];
  readonly retryAfterMs?: number;
  readonly cause?: unknown;
}

/**
 * A failure talking to a registry (ggcr transport.Error). `temporary` is computed from the
 * status and the spec code; the retry middleware branches on it, never on the message.
 */
export class RegistryError extends TsbuildError<RegistryErrorCode> {
  readonly status?: number;
  readonly method?: string;
  /** The request URL without credentials or query values. */
  readonly url?: string;
  /** The image reference being worked on, when known. */
  readonly ref?: string;
  readonly diagnostics: readonly Diagnostic[];
  /** Milliseconds the registry asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs?: number;

  constructor(code: RegistryErrorCode, message: string, init: RegistryErrorInit = {}) {
    super(code, message, init.cause === undefined ? undefined : { cause: init.cause });
    if (init.status !== undefined) this.status = init.status;
    if (init.method !== undefined) this.method = init.method;
    if (init.url !== undefined) this.url = redactUrl(init.url);
    if (init.ref !== undefined) this.ref = init.ref;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    this.diagnostics = init.diagnostics ?? [];
  }

  /** True when trying again later may succeed (5xx, 408, 429, network failures, timeouts). */
  get temporary(): boolean {
    if (TEMPORARY_CODES.has(this.code)) return true;
    if (this.status !== undefined && TEMPORARY_STATUSES.has(this.status)) return true;
    return this.diagnostics.some((d) => TEMPORARY_CODES.has(d.code));
  }
}

/** True for the distribution spec's own codes (as opposed to client-side ones). */
export function isDistributionCode(code: string): code is DistributionErrorCode {
  return DISTRIBUTION_CODES.has(code);
}

/** A URL safe to print: no user info, query values replaced (they may hold signatures or tokens). */
export function redactUrl(u: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(u));
  } catch {
    return '<invalid url>';
  }
  url.username = '';
  url.password = '';
  const keys = [...new Set([...url.searchParams.keys()])];
  if (keys.length === 0) return url.toString();
  const q = keys.map((k) => `${encodeURIComponent(k)}=REDACTED`).join('&');
  return `${url.origin}${url.pathname}?${q}`;
}

/**
 * Parses a registry error body (`{"errors":[{"code","message","detail"}]}`); returns [] for
 * anything else (HTML from a proxy, empty bodies).
 */
export function parseErrorBody(text: string): Diagnostic[] {
  if (!text) return [];
  try {
    const j = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(j.errors)) return [];
    const out: Diagnostic[] = [];
    for (const e of j.errors as unknown[]) {
      if (!e || typeof e !== 'object') continue;
      const { code, message, detail } = e as Record<string, unknown>;
      if (typeof code !== 'string') continue;
      const d: { code: string; message?: string; detail?: unknown } = { code: code.toUpperCase() };
      if (typeof message === 'string') d.message = message;
      if (detail !== undefined) d.detail = detail;
      out.push(d);
    }
    return out;
  } catch {
    return [];
  }
}

/** Fallback code for a status when the body had none. */
export function codeForStatus(status: number): RegistryErrorCode {
  switch (status) {
    case 401: return 'UNAUTHORIZED';
    case 403: return 'DENIED';
    case 405: return 'UNSUPPORTED';
    case 429: return 'TOOMANYREQUESTS';
    case 503: return 'UNAVAILABLE';
    default: return 'UNEXPECTED_STATUS';
  }
}
