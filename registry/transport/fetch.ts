import { Readable } from 'node:stream';
import http from 'node:http';
import https from 'node:https';
import { Headers } from './headers.js';
import { RegistryError, codeForStatus, isDistributionCode, parseErrorBody, type RegistryErrorCode } from './errors.js';

/**
 * A request body. A function is called once per attempt and makes the body *replayable*
 * (retries, auth refresh, 307/308 redirects); a bare Readable can be sent only once.
 */
export type RequestBody = Uint8Array | string | Readable | (() => Readable | Promise<Readable>);

/** HTTP methods the registry client uses. */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One registry HTTP request. Header names are lower case ({@link Headers}). */
export interface RegistryRequest {
  readonly method: Method;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  /** Token scopes this request needs, e.g. `repository:demo/app:pull,push`. */
  readonly scopes?: readonly string[];
  /** Overrides the method's idempotency for retries (e.g. a POST that opens an upload session is safe to repeat). */
  readonly idempotent?: boolean;
}

/**
 * A registry HTTP response. The caller MUST consume `body` or call `discard()`, so that the
 * connection goes back to the pool.
 */
export interface RegistryResponse {
  readonly status: number;
  /** Lower-case header names; repeated headers joined with ", " (www-authenticate kept as a list in `challenges`). */
  readonly headers: Readonly<Record<string, string>>;
  /** Raw WWW-Authenticate values. */
  readonly challenges: readonly string[];
  readonly url: URL;
  readonly body: Readable;
  /** Reads the body as bytes, failing with INVALID_RESPONSE beyond `max` bytes. */
  bytes(max?: number): Promise<Buffer>;
  text(max?: number): Promise<string>;
  discard(): Promise<void>;
}

/** The one transport type: middlewares wrap it (ggcr http.RoundTripper). */
export type Fetch = (req: RegistryRequest, signal?: AbortSignal) => Promise<RegistryResponse>;

/** Wraps a Fetch with behaviour (auth, retry, redirects, user agent, logging). */
export type Middleware = (next: Fetch) => Fetch;

/** `compose(base, a, b)` → a(b(base)): the first middleware is the outermost. */
export function compose(base: Fetch, ...mw: readonly Middleware[]): Fetch {
  return mw.reduceRight<Fetch>((f, m) => m(f), base);
}

/** TLS settings for one registry. */
export interface TlsOptions {
  /** Extra CA certificates (PEM); added to Node's default roots. */
  readonly ca?: readonly (string | Buffer)[];
  /** Client certificate and key (mutual TLS; docker's certs.d client.cert/client.key). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** false disables certificate verification (`--tls-verify=false`). */
  readonly verify?: boolean;
}

/** Options of {@link httpTransport}. */
export interface HttpTransportOptions {
  /** Connections per origin (bounded; default 8). */
  readonly connections?: number;
  readonly tls?: TlsOptions;
  /** Milliseconds to wait for response headers (default 60 s). */
  readonly headersTimeoutMs?: number;
  /** Milliseconds of silence allowed while reading a body (default 60 s). */
  readonly bodyTimeoutMs?: number;
  /** Milliseconds to establish a connection (default 15 s). */
  readonly connectTimeoutMs?: number;
}

/** A base transport and the means to close its connections. */
export interface HttpTransport {
  readonly fetch: Fetch;
  close(): Promise<void>;
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER',
  'CONNECT_TIMEOUT', 'HEADERS_TIMEOUT', 'BODY_TIMEOUT', 'ECONNABORTED',
]);

/** True for errors of the connection itself (not HTTP statuses): reset, refused, timeouts, TLS. */
export function isConnectionError(e: unknown): boolean {
  for (let cur = e, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    if (cur instanceof RegistryError) return cur.code === 'NETWORK' || cur.code === 'TIMEOUT';
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (typeof code === 'string' && code.startsWith('ERR_SSL')) return true;
  }
  return false;
}

function isTimeout(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'CONNECT_TIMEOUT' || code === 'HEADERS_TIMEOUT' || code === 'BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

/** Reads a stream fully, failing beyond `max` bytes (the stream is destroyed then). */
export async function readBody(body: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    n += b.length;
    if (n > max) {
      body.destroy();
      throw new RegistryError('INVALID_RESPONSE', `${what}: response larger than ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, n);
}

function headerRecord(h: Record<string, string | string[] | undefined>): { headers: Record<string, string>; challenges: string[] } {
  const headers: Record<string, string> = {};
  let challenges: string[] = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const name = k.toLowerCase();
    const list = Array.isArray(v) ? v : [v];
    if (name === Headers.WwwAuthenticate) challenges = list;
    headers[name] = list.join(', ');
  }
  return { headers, challenges };
}

/** Wraps a status, headers and body stream as a {@link RegistryResponse}. */
export function makeResponse(status: number, rawHeaders: Record<string, string | string[] | undefined>, body: Readable, url: URL): RegistryResponse {
  const { headers, challenges } = headerRecord(rawHeaders);
  let consumed = false;
  const take = (): Readable => {
    if (consumed) throw new RegistryError('INVALID_RESPONSE', `response body of ${url.pathname} read twice`);
    consumed = true;
    return body;
  };
  return {
    status,
    headers,
    challenges,
    url,
    body,
    bytes: (max = 16 << 20) => readBody(take(), max, `reading ${url.pathname}`),
    text: async (max = 16 << 20) => (await readBody(take(), max, `reading ${url.pathname}`)).toString('utf8'),
    discard: async () => {
      if (consumed) return;
      consumed = true;
      body.on('error', () => {});
      // Drain small bodies so the connection is reused; destroy large ones.
      const len = Number(headers[Headers.ContentLength] ?? NaN);
      if (Number.isFinite(len) && len > 1 << 20) {
        body.destroy();
        return;
      }
      try {
        for await (const _ of body) void _;
      } catch {
        /* the connection is dropped; nothing to clean */
      }
    },
  };
}

async function resolveBody(b: RequestBody | undefined): Promise<string | Uint8Array | Readable | null> {
  if (b === undefined) return null;
  if (typeof b === 'function') return await b();
  return b;
}

/** True when a request's body can be sent again (none, bytes, or a function making a new stream). */
export function isReplayable(req: RegistryRequest): boolean {
  return req.body === undefined || typeof req.body !== 'object' || !(req.body instanceof Readable);
}

/** A connection-level error raised by {@link httpTransport} itself (timeouts), with a stable code. */
function connError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * The base transport: Node's own HTTP client (`node:http`/`node:https`) with keep-alive agents
 * and a bounded number of connections per origin; maps connection failures to RegistryError
 * NETWORK/TIMEOUT/ABORTED. Does not follow redirects (see {@link redirects}) and sets no auth.
 *
 * Node's client rather than undici: response bodies arrive as slices of the socket's reads
 * (undici copies every byte through its WASM parser), which halves the CPU time of a blob
 * transfer and keeps fewer dead buffers around; and it is already loaded with Node.
 */
export function httpTransport(opts: HttpTransportOptions = {}): HttpTransport {
  const tls = opts.tls;
  const maxSockets = opts.connections ?? 8;
  const common = { keepAlive: true, keepAliveMsecs: 1000, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
  const plainAgent = new http.Agent(common);
  const tlsAgent = new https.Agent({
    ...common,
    ...(tls?.ca?.length ? { ca: [...tls.ca] } : {}),
    ...(tls?.cert ? { cert: tls.cert } : {}),
    ...(tls?.key ? { key: tls.key } : {}),
    rejectUnauthorized: tls?.verify !== false,
  });
  const headersTimeout = opts.headersTimeoutMs ?? 60_000;
  const bodyTimeout = opts.bodyTimeoutMs ?? 60_000;
  const connectTimeout = opts.connectTimeoutMs ?? 15_000;
  const fetch: Fetch = async (req, signal) => {
    if (signal?.aborted) throw new RegistryError('ABORTED', `${req.method} ${req.url.pathname}: aborted`, { method: req.method, url: req.url, cause: signal.reason });
    let body: string | Uint8Array | Readable | null;
    try {
      body = await resolveBody(req.body);
    } catch (e) {
      throw transportError(e, req, signal);
    }
    const u = req.url;
    const secure = u.protocol === 'https:';
    return new Promise<RegistryResponse>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown): void => {
        if (settled) return;
        settled = true;
        if (body instanceof Readable) body.destroy();
        reject(transportError(e, req, signal));
      };
      let r: http.ClientRequest;
      try {
        r = (secure ? https : http).request({
          protocol: u.protocol,
          hostname: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
          port: u.port || (secure ? 443 : 80),
          path: u.pathname + u.search,
          method: req.method,
          headers: { ...req.headers },
          agent: secure ? tlsAgent : plainAgent,
          ...(signal ? { signal } : {}),
        });
      } catch (e) {
        fail(e);
        return;
      }
      let res: http.IncomingMessage | undefined;
      r.on('socket', (sock) => {
        if (!sock.connecting) return;
        const t = setTimeout(() => r.destroy(connError('CONNECT_TIMEOUT', `connect timed out after ${connectTimeout} ms`)), connectTimeout);
        const clear = (): void => clearTimeout(t);
        sock.once('connect', clear);
        sock.once('close', clear);
      });
      // one idle timer on the socket: first for the response headers, then for silence in the body
      r.setTimeout(headersTimeout, () => {
        if (res) res.destroy(connError('BODY_TIMEOUT', `no body data for ${bodyTimeout} ms`));
        else r.destroy(connError('HEADERS_TIMEOUT', `no response headers in ${headersTimeout} ms`));
      });
      r.once('error', fail);
      r.once('response', (m) => {
        res = m;
        settled = true;
        if (bodyTimeout !== headersTimeout) r.setTimeout(bodyTimeout);
        resolve(makeResponse(m.statusCode ?? 0, m.headersDistinct as Record<string, string[] | undefined>, m, u));
      });
      if (body instanceof Readable) {
        body.once('error', (e) => r.destroy(e));
        body.pipe(r);
      } else if (body === null) r.end();
      else r.end(body);
    });
  };
  return {
    fetch,
    close: async () => {
      plainAgent.destroy();
      tlsAgent.destroy();
    },
  };
}

/** Maps a thrown connection-level error to a RegistryError (passes RegistryErrors through). */
export function transportError(e: unknown, req: RegistryRequest, signal?: AbortSignal): RegistryError {
  if (e instanceof RegistryError) return e;
  const init = { method: req.method, url: req.url, cause: e };
  const where = `${req.method} ${req.url.host}${req.url.pathname}`;
  if (signal?.aborted) {
    const reason = signal.reason as { name?: string } | undefined;
    if (reason?.name === 'TimeoutError') return new RegistryError('TIMEOUT', `${where}: timed out`, init);
    return new RegistryError('ABORTED', `${where}: aborted`, init);
  }
  if (isTimeout(e)) return new RegistryError('TIMEOUT', `${where}: timed out`, init);
  const msg = e instanceof Error ? e.message : String(e);
  return new RegistryError('NETWORK', `${where}: ${msg}`, init);
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds; undefined when absent or bad. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const d = Date.parse(t);
  if (Number.isNaN(d)) return undefined;
  return Math.max(0, d - now);
}

/**
 * Builds a RegistryError from a failed response, reading (and bounding) its body. `what` names
 * the operation and object, e.g. `pulling 127.0.0.1:5000/demo/app:v1`; the message reads
 * `pulling 127.0.0.1:5000/demo/app:v1: manifest unknown (404 MANIFEST_UNKNOWN)`.
 */
export async function errorFromResponse(
  res: RegistryResponse,
  req: Pick<RegistryRequest, 'method'>,
  what: string,
  opts: { readonly ref?: string; readonly notFound?: RegistryErrorCode } = {},
): Promise<RegistryError> {
  const ref = opts.ref;
  let text = '';
  if (req.method !== 'HEAD') {
    try {
      text = await res.text(64 << 10);
    } catch {
      /* an unreadable error body still leaves the status */
    }
  } else {
    await res.discard();
  }
  const diagnostics = parseErrorBody(text);
  const first = diagnostics[0];
  let code: RegistryErrorCode = first && isDistributionCode(first.code) ? first.code : codeForStatus(res.status);
  if (!first && res.status === 404 && opts.notFound) code = opts.notFound;
  const detail = first?.message ?? (text && !text.trimStart().startsWith('<') ? text.trim().slice(0, 200) : defaultText(res.status, code));
  const retryAfterMs = parseRetryAfter(res.headers[Headers.RetryAfter]);
  return new RegistryError(code, `${what}: ${detail.toLowerCase()} (${res.status} ${code})`, {
    status: res.status,
    method: req.method,
    url: res.url,
    diagnostics,
    ...(ref !== undefined ? { ref } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

function defaultText(status: number, code: RegistryErrorCode): string {
  if (code === 'MANIFEST_UNKNOWN') return 'manifest unknown';
  if (code === 'BLOB_UNKNOWN') return 'blob unknown';
  switch (status) {
    case 400: return 'bad request';
    case 401: return 'authentication required';
    case 403: return 'access denied';
    case 404: return 'not found';
    case 405: return 'operation unsupported';
    case 408: return 'request timeout';
    case 413: return 'payload too large';
    case 416: return 'range not satisfiable';
    case 429: return 'too many requests';
    case 500: return 'internal server error';
    case 502: return 'bad gateway';
    case 503: return 'service unavailable';
    case 504: return 'gateway timeout';
    default: return `unexpected status ${status}`;
  }
}
