import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../src/util/logger.js';
import { nullLogger } from '../../src/util/logger.js';
import { Headers } from './headers.js';
import { RegistryError, TEMPORARY_STATUSES, redactUrl } from './errors.js';
import { isConnectionError, isReplayable, parseRetryAfter, transportError, type Fetch, type Middleware, type RegistryRequest } from './fetch.js';

/** Sets User-Agent unless the request has one. */
export function userAgent(ua: string): Middleware {
  return (next) => (req, signal) =>
    next(req.headers?.[Headers.UserAgent] ? req : { ...req, headers: { ...req.headers, [Headers.UserAgent]: ua } }, signal);
}

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Total attempts including the first (default 5). */
  readonly attempts?: number;
  /** First backoff in ms (default 200); doubles each attempt. */
  readonly baseDelayMs?: number;
  /** Largest backoff and largest honoured Retry-After in ms (default 30 s). */
  readonly maxDelayMs?: number;
  readonly logger?: Logger;
  /** Injected for tests; defaults to Math.random. */
  readonly random?: () => number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

/** True when a request may be sent again: idempotent (or marked so) and its body replayable. */
export function canRetry(req: RegistryRequest): boolean {
  return (req.idempotent ?? IDEMPOTENT.has(req.method)) && isReplayable(req);
}

/**
 * Retries connection failures and 408/429/5xx with exponential backoff and full jitter
 * (AWS architecture blog "Exponential Backoff And Jitter"), honouring Retry-After. Only
 * requests passing {@link canRetry} are retried. Retries happen before the response body is
 * read; an interrupted body is the caller's to resume (blob downloads use Range).
 */
export function retry(opts: RetryOptions = {}): Middleware {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 30_000;
  const log = opts.logger ?? nullLogger;
  const random = opts.random ?? Math.random;
  return (next) => async (req, signal) => {
    const retryable = canRetry(req);
    for (let attempt = 1; ; attempt++) {
      let wait: number;
      let why: string;
      try {
        const res = await next(req, signal);
        if (!retryable || attempt >= attempts || !TEMPORARY_STATUSES.has(res.status)) return res;
        const ra = parseRetryAfter(res.headers[Headers.RetryAfter]);
        await res.discard();
        wait = ra !== undefined ? Math.min(ra, max) : backoff(attempt);
        why = `status ${res.status}`;
      } catch (e) {
        const temporary = e instanceof RegistryError ? e.temporary && e.code !== 'ABORTED' : isConnectionError(e);
        if (!retryable || attempt >= attempts || !temporary || signal?.aborted) throw e;
        wait = e instanceof RegistryError && e.retryAfterMs !== undefined ? Math.min(e.retryAfterMs, max) : backoff(attempt);
        why = e instanceof Error ? e.message : String(e);
      }
      log.debug(`retrying ${req.method} ${redactUrl(req.url)} in ${wait} ms (attempt ${attempt + 1}/${attempts}): ${why}`);
      try {
        await sleep(wait, undefined, signal ? { signal } : undefined);
      } catch (e) {
        throw transportError(e, req, signal);
      }
    }
  };
  function backoff(attempt: number): number {
    const cap = Math.min(max, base * 2 ** (attempt - 1));
    return Math.round(cap / 2 + (random() * cap) / 2);
  }
}

/**
 * Follows 301/302/303/307/308 (up to `max`). Authorization is dropped when the redirect leaves
 * the origin (presigned S3/CDN URLs reject it, and it must not leak). 303, and 301/302 of a
 * POST, become GET without a body; 307/308 replay the body (which must be replayable).
 */
export function redirects(max = 10): Middleware {
  return (next) => async (req, signal) => {
    let cur: RegistryRequest = req;
    for (let hop = 0; ; hop++) {
      const res = await next(cur, signal);
      if (![301, 302, 303, 307, 308].includes(res.status)) return res;
      const loc = res.headers[Headers.Location];
      if (!loc) return res;
      const url = new URL(loc, cur.url);
      const toGet = res.status === 303 || ((res.status === 301 || res.status === 302) && cur.method === 'POST');
      if (!toGet && !isReplayable(cur)) return res;
      await res.discard();
      if (hop >= max) {
        throw new RegistryError('TOO_MANY_REDIRECTS', `${req.method} ${redactUrl(req.url)}: more than ${max} redirects`, { method: req.method, url: req.url });
      }
      const headers: Record<string, string> = { ...cur.headers };
      if (url.origin !== cur.url.origin) delete headers[Headers.Authorization];
      if (toGet) {
        delete headers[Headers.ContentLength];
        delete headers[Headers.ContentType];
        const { body: _b, ...rest } = cur;
        void _b;
        cur = { ...rest, method: cur.method === 'HEAD' ? 'HEAD' : 'GET', url, headers };
      } else {
        cur = { ...cur, url, headers };
      }
    }
  };
}

/** Aborts any request (headers and body) after `ms` milliseconds in total. */
export function timeout(ms: number): Middleware {
  return (next) => (req, signal) => {
    const t = AbortSignal.timeout(ms);
    return next(req, signal ? AbortSignal.any([signal, t]) : t);
  };
}

/** Logs each request and its status at debug level. */
export function logRequests(logger: Logger): Middleware {
  return (next): Fetch => async (req, signal) => {
    const res = await next(req, signal);
    logger.debug(`${req.method} ${redactUrl(req.url)} -> ${res.status}`);
    return res;
  };
}
