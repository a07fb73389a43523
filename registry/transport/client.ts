import type { Logger } from '../../src/util/logger.js';
import { nullLogger } from '../../src/util/logger.js';
import { auth, type Credential, type Keychain } from './auth.js';
import { parseWwwAuthenticate, pickChallenge, type Challenge } from './challenge.js';
import { RegistryError } from './errors.js';
import { compose, errorFromResponse, httpTransport, type Fetch, type HttpTransport, type Middleware, type RegistryResponse, type TlsOptions } from './fetch.js';
import { logRequests, redirects, retry, userAgent, type RetryOptions } from './middleware.js';

/** Options shared by every registry operation (ggcr remote.Option). Readonly; `signal` cancels. */
export interface TransportOptions {
  readonly keychain?: Keychain;
  /** Fixed credentials; take precedence over the keychain. */
  readonly credential?: Credential;
  /** Use plain HTTP for this registry. */
  readonly plainHttp?: boolean;
  /**
   * Allow falling back to plain HTTP when HTTPS does not answer, as docker does for insecure
   * registries. Loopback hosts (localhost, 127.0.0.0/8, ::1) are treated as insecure by default.
   */
  readonly insecure?: boolean;
  readonly tls?: TlsOptions;
  readonly userAgent?: string;
  readonly retry?: RetryOptions;
  /** Connections per origin (default 8). */
  readonly connections?: number;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
  /** Extra middlewares, outermost first (tests, logging). */
  readonly middleware?: readonly Middleware[];
  /** Reuse one HTTP agent across calls (the caller closes it). */
  readonly http?: HttpTransport;
}

/** The default User-Agent. */
export const DEFAULT_USER_AGENT = 'tsbuild/0.1';

/** True for hosts docker treats as insecure by default: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The API host for a registry name (docker.io's API lives at registry-1.docker.io). */
export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/**
 * One registry endpoint: picks the scheme, pings `/v2/` once for the auth challenge, and
 * offers a composed {@link Fetch} (user agent → retry → auth → redirects → undici). Close it
 * when done unless `opts.http` was given.
 */
export class RegistryClient {
  readonly registry: string;
  readonly #opts: TransportOptions;
  readonly #http: HttpTransport;
  readonly #ownsHttp: boolean;
  readonly #plain: Fetch;
  readonly #probe: Fetch;
  readonly #log: Logger;
  #base: Promise<{ url: URL; challenge: Challenge | undefined }> | undefined;
  readonly #extraScopes: string[] = [];
  #fetch: Fetch | undefined;

  constructor(registry: string, opts: TransportOptions = {}) {
    this.registry = registry;
    this.#opts = opts;
    this.#log = opts.logger ?? nullLogger;
    this.#ownsHttp = !opts.http;
    this.#http =
      opts.http ??
      httpTransport({ ...(opts.connections !== undefined ? { connections: opts.connections } : {}), ...(opts.tls ? { tls: opts.tls } : {}) });
    this.#plain = compose(
      this.#http.fetch,
      ...(opts.middleware ?? []),
      userAgent(opts.userAgent ?? DEFAULT_USER_AGENT),
      retry({ logger: this.#log, ...opts.retry }),
      logRequests(this.#log),
      redirects(),
    );
    // The HTTPS probe of a registry that may speak plain HTTP is not retried: a TLS failure there is an answer.
    this.#probe = compose(this.#http.fetch, ...(opts.middleware ?? []), userAgent(opts.userAgent ?? DEFAULT_USER_AGENT), redirects());
  }

  /** Scopes added to every token request from now on (cross-repository mount sources). */
  addScopes(...scopes: string[]): void {
    for (const s of scopes) if (!this.#extraScopes.includes(s)) this.#extraScopes.push(s);
  }

  /** `scheme://host[:port]` of the registry API, after the ping decided the scheme. */
  async baseUrl(): Promise<URL> {
    return (await this.#ping()).url;
  }

  /** The authenticated transport for this registry. */
  get fetch(): Fetch {
    if (!this.#fetch) {
      const authMw = auth({
        registry: apiHost(this.registry),
        challenge: async () => (await this.#ping()).challenge,
        credential: () => this.#credential(),
        tokenFetch: this.#plain,
        extraScopes: this.#extraScopes,
        logger: this.#log,
      });
      const signal = this.#opts.signal;
      const inner = compose(
        this.#http.fetch,
        ...(this.#opts.middleware ?? []),
        userAgent(this.#opts.userAgent ?? DEFAULT_USER_AGENT),
        retry({ logger: this.#log, ...this.#opts.retry }),
        authMw,
        logRequests(this.#log),
        redirects(),
      );
      this.#fetch = (req, s) => inner(req, s && signal ? AbortSignal.any([s, signal]) : (s ?? signal));
    }
    return this.#fetch;
  }

  /** Closes the HTTP agent when this client made it. */
  async close(): Promise<void> {
    if (this.#ownsHttp) await this.#http.close();
  }

  async #credential(): Promise<Credential | undefined> {
    if (this.#opts.credential) return this.#opts.credential;
    return this.#opts.keychain?.resolve(this.registry);
  }

  #ping(): Promise<{ url: URL; challenge: Challenge | undefined }> {
    this.#base ??= this.#doPing();
    this.#base.catch(() => (this.#base = undefined));
    return this.#base;
  }

  async #doPing(): Promise<{ url: URL; challenge: Challenge | undefined }> {
    const host = apiHost(this.registry);
    const schemes: ('https' | 'http')[] = this.#opts.plainHttp
      ? ['http']
      : this.#opts.insecure || isLoopbackHost(host)
        ? ['https', 'http']
        : ['https'];
    const decide = async (scheme: 'https' | 'http', res: RegistryResponse): Promise<{ url: URL; challenge: Challenge | undefined }> => {
      const url = new URL(`${scheme}://${host}/v2/`);
      const base = new URL(`${scheme}://${host}`);
      if (res.status === 200) {
        await res.discard();
        return { url: base, challenge: undefined };
      }
      if (res.status === 401) {
        const challenge = pickChallenge(parseWwwAuthenticate(res.challenges));
        await res.discard();
        if (!challenge) throw new RegistryError('UNAUTHORIZED', `pinging ${host}: unsupported authentication challenge ${JSON.stringify(res.challenges.join(', '))}`, { status: 401, method: 'GET', url });
        return { url: base, challenge };
      }
      throw await errorFromResponse(res, { method: 'GET' }, `pinging ${host}`);
    };
    const ping = (f: Fetch, scheme: 'https' | 'http', signal?: AbortSignal): Promise<RegistryResponse> => f({ method: 'GET', url: new URL(`${scheme}://${host}/v2/`) }, signal);
    if (schemes.length === 1) {
      try {
        return await decide(schemes[0]!, await ping(this.#plain, schemes[0]!, this.#opts.signal));
      } catch (e) {
        throw wrap(e, host);
      }
    }
    // HTTPS first, plain HTTP only when the TLS attempt shows a plain-HTTP server; the plain
    // probe is sent at the same time (one round trip instead of two), its answer used only then.
    const early = new AbortController();
    const signal = this.#opts.signal ? AbortSignal.any([this.#opts.signal, early.signal]) : early.signal;
    const plainEarly = ping(this.#probe, 'http', signal).then(
      (res) => ({ res }),
      (err: unknown) => ({ err }),
    );
    let tlsRes: RegistryResponse;
    try {
      tlsRes = await ping(this.#probe, 'https', this.#opts.signal);
    } catch (e) {
      if (!isPlainHttpAnswer(e)) {
        early.abort();
        void plainEarly.then((p) => ('res' in p ? p.res.discard() : undefined));
        throw wrap(e, host);
      }
      this.#log.debug(`${host}: https ping failed (${e instanceof Error ? e.message : String(e)}), trying plain http`);
      const p = await plainEarly;
      try {
        // a failed early probe is asked again through the retrying transport
        return await decide('http', 'res' in p ? p.res : await ping(this.#plain, 'http', this.#opts.signal));
      } catch (e2) {
        throw wrap(e2, host);
      }
    }
    early.abort();
    void plainEarly.then((p) => ('res' in p ? p.res.discard() : undefined));
    try {
      return await decide('https', tlsRes);
    } catch (e) {
      throw wrap(e, host);
    }
  }
}

function wrap(e: unknown, host: string): RegistryError {
  if (e instanceof RegistryError) return e;
  return new RegistryError('NETWORK', `pinging ${host}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * True when an HTTPS attempt failed the way a plain-HTTP server makes it fail (TLS record
 * errors, reset): the cue to try http://. Certificate errors are not: an https registry with
 * an unknown CA must not be silently downgraded.
 */
export function isPlainHttpAnswer(e: unknown): boolean {
  for (let cur = e, i = 0; cur && i < 6; cur = (cur as { cause?: unknown }).cause, i++) {
    const code = (cur as { code?: unknown }).code;
    const msg = cur instanceof Error ? cur.message : '';
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return true;
    if (/wrong version number|packet length too long|unknown protocol/i.test(msg)) return true;
  }
  return false;
}
