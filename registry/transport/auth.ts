import type { Logger } from '../../src/util/logger.js';
import { nullLogger } from '../../src/util/logger.js';
import { parseWwwAuthenticate, pickChallenge, type Challenge } from './challenge.js';
import { RegistryError } from './errors.js';
import { errorFromResponse, isReplayable, type Fetch, type Middleware, type RegistryRequest } from './fetch.js';
import { Headers } from './headers.js';

/**
 * Credentials for one registry (docker config.json `auths` entry after decoding).
 * `identityToken` is an OAuth2 refresh token (docker's "identitytoken"); `registryToken` is a
 * bearer token sent as is ("registrytoken").
 */
export type Credential =
  | { readonly username: string; readonly password: string }
  | { readonly identityToken: string; readonly username?: string }
  | { readonly registryToken: string };

/** Finds credentials for a registry host (`127.0.0.1:5000`, `docker.io`). Undefined means anonymous. */
export interface Keychain {
  resolve(registry: string): Promise<Credential | undefined>;
}

/** The pull/push scope of a repository: `repository:demo/app:pull,push` (distribution token scope grammar). */
export function repositoryScope(repository: string, actions: readonly ('pull' | 'push' | 'delete' | '*')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Options of {@link auth}. */
export interface AuthOptions {
  /** Registry host[:port]; only requests to this host get credentials. */
  readonly registry: string;
  /** The registry's challenge from the ping (`GET /v2/`); undefined = no auth needed. */
  readonly challenge: () => Promise<Challenge | undefined>;
  readonly credential: () => Promise<Credential | undefined>;
  /** Transport for the token service: retries and user agent, but no auth. */
  readonly tokenFetch: Fetch;
  /** Scopes added to every token request (e.g. cross-repository mount sources). */
  readonly extraScopes?: readonly string[];
  readonly logger?: Logger;
  readonly clientId?: string;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * Adds Authorization to requests for the registry: Basic when the registry challenges with
 * Basic; for Bearer, a token from the realm for the request's scopes (cached per scope set until
 * it expires). On a 401 it asks for a new token for the union of the request's scopes and the
 * challenge's, and replays the request once (when its body is replayable).
 */
export function auth(opts: AuthOptions): Middleware {
  const tokens = new Map<string, Promise<CachedToken>>();
  const log = opts.logger ?? nullLogger;

  async function token(ch: Challenge, scopes: readonly string[], fresh: boolean): Promise<string> {
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = tokens.get(key);
    if (cached && !fresh) {
      const t = await cached.catch(() => undefined);
      if (t && t.expiresAt > Date.now()) return t.token;
    }
    const p = fetchToken(ch, [...new Set(scopes)].sort());
    tokens.set(key, p);
    p.catch(() => tokens.delete(key));
    return (await p).token;
  }

  async function fetchToken(ch: Challenge, scopes: readonly string[]): Promise<CachedToken> {
    const cred = await opts.credential();
    if (cred && 'registryToken' in cred) return { token: cred.registryToken, expiresAt: Number.MAX_SAFE_INTEGER };
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError('UNAUTHORIZED', `authenticating to ${opts.registry}: bearer challenge without realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (e) {
      throw new RegistryError('UNAUTHORIZED', `authenticating to ${opts.registry}: invalid token realm ${JSON.stringify(realm)}`, { cause: e });
    }
    const service = ch.params.service;
    let req: RegistryRequest;
    if (cred && 'identityToken' in cred) {
      // OAuth2 refresh-token grant (docker/distribution docs/spec/auth/oauth.md).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: opts.clientId ?? 'tsbuild' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      req = { method: 'POST', url, headers: { [Headers.ContentType]: 'application/x-www-form-urlencoded' }, body: form.toString(), idempotent: true };
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred && 'password' in cred) headers[Headers.Authorization] = basicHeader(cred.username, cred.password);
      req = { method: 'GET', url, headers };
    }
    const who = cred && 'username' in cred && cred.username ? ` as ${cred.username}` : '';
    const res = await opts.tokenFetch(req);
    if (res.status !== 200) throw await errorFromResponse(res, req, `authenticating to ${opts.registry}${who}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(await res.text(1 << 20)) as typeof body;
    } catch (e) {
      throw new RegistryError('INVALID_RESPONSE', `authenticating to ${opts.registry}: token response is not JSON`, { cause: e });
    }
    const t = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!t) throw new RegistryError('INVALID_RESPONSE', `authenticating to ${opts.registry}: token response has no token`);
    // Without expires_in the spec's default lifetime is 60 s; refresh early (10 s, or half a short lifetime).
    const ttl = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    log.debug(`got a token for ${opts.registry} (${scopes.join(' ') || 'no scope'}, ${ttl} s)`);
    return { token: t, expiresAt: Date.now() + (ttl - Math.min(10, ttl / 2)) * 1000 };
  }

  return (next) => async (req, signal) => {
    if (req.url.host !== opts.registry && !(opts.registry === 'docker.io' && req.url.host === 'registry-1.docker.io')) return next(req, signal);
    const ch = await opts.challenge();
    if (!ch) return next(req, signal);
    const scopes = [...(req.scopes ?? []), ...(opts.extraScopes ?? [])];
    const authorize = async (c: Challenge, sc: readonly string[], fresh: boolean): Promise<RegistryRequest> => {
      if (c.scheme === 'basic') {
        const cred = await opts.credential();
        if (!cred || !('password' in cred)) return req;
        return { ...req, headers: { ...req.headers, [Headers.Authorization]: basicHeader(cred.username, cred.password) } };
      }
      return { ...req, headers: { ...req.headers, [Headers.Authorization]: `Bearer ${await token(c, sc, fresh)}` } };
    };
    const res = await next(await authorize(ch, scopes, false), signal);
    if (res.status !== 401 || ch.scheme !== 'bearer' || !isReplayable(req)) return res;
    // A 401 with a bearer challenge: the token expired or lacks a scope. Ask once more.
    const again = pickChallenge(parseWwwAuthenticate(res.challenges));
    if (!again || again.scheme !== 'bearer') return res;
    await res.discard();
    const more = again.params.scope ? again.params.scope.split(' ') : [];
    return next(await authorize(again, [...scopes, ...more], true), signal);
  };
}

/** `Basic base64(user:password)`. */
export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
