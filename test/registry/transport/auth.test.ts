import { afterEach, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../registry/transport/client.js';
import { RegistryError } from '../../../registry/transport/errors.js';
import { serve, type LocalServer } from '../serve.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A fake registry + token service whose tokens expire after `ttl` seconds and grant exactly the requested scopes. */
async function tokenRegistry(opts: { ttl?: number } = {}): Promise<{ reg: LocalServer; auth: LocalServer; issued: string[] }> {
  const issued: string[] = [];
  const auth = await serve((req, body, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = req.method === 'POST' ? new URLSearchParams(body.toString()).get('scope')?.split(' ') ?? [] : u.searchParams.getAll('scope');
    const tok = `t${issued.length}|${scopes.sort().join(' ')}`;
    issued.push(tok);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: tok, expires_in: opts.ttl ?? 300 }));
  });
  const reg = await serve((req, _b, res) => {
    const h = req.headers.authorization ?? '';
    const need = req.url?.startsWith('/v2/a/') ? 'repository:a:pull' : req.url?.startsWith('/v2/b/') ? 'repository:b:pull,push' : '';
    const ok = h.startsWith('Bearer ') && (need === '' || h.includes(need));
    if (!ok) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${authOrigin}/token",service="svc"${need ? `,scope="${need}",error="insufficient_scope"` : ''}` });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    res.end('ok');
  });
  const authOrigin = auth.origin;
  cleanups.push(() => reg.close(), () => auth.close());
  return { reg, auth, issued };
}

describe('bearer auth middleware', () => {
  it('gets one token per scope set and reuses it', async () => {
    const { reg, auth, issued } = await tokenRegistry();
    const c = new RegistryClient(reg.host, { plainHttp: true, credential: { username: 'u', password: 'p' } });
    cleanups.push(() => c.close());
    const base = await c.baseUrl();
    for (let i = 0; i < 3; i++) {
      const r = await c.fetch({ method: 'GET', url: new URL('/v2/a/manifests/x', base), scopes: ['repository:a:pull'] });
      expect(r.status).toBe(200);
      await r.discard();
    }
    expect(issued).toEqual(['t0|repository:a:pull']);
    expect(auth.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(auth.requests[0]!.url).toBe('/token?service=svc&scope=repository%3Aa%3Apull');
  });

  it('asks again with the challenge scope on a 401 and replays the request', async () => {
    const { reg, issued } = await tokenRegistry();
    const c = new RegistryClient(reg.host, { plainHttp: true });
    cleanups.push(() => c.close());
    const r = await c.fetch({ method: 'PUT', url: new URL('/v2/b/blobs/uploads/x', await c.baseUrl()), body: 'data', headers: { 'content-length': '4' } });
    expect(r.status).toBe(200);
    await r.discard();
    expect(issued).toEqual(['t0|', 't1|repository:b:pull,push']);
    expect(reg.requests.filter((q) => q.method === 'PUT').map((q) => q.body.toString())).toEqual(['data', 'data']);
  });

  it('refreshes an expired token', async () => {
    const { reg, issued } = await tokenRegistry({ ttl: 1 });
    const c = new RegistryClient(reg.host, { plainHttp: true });
    cleanups.push(() => c.close());
    const url = new URL('/v2/a/x', await c.baseUrl());
    await (await c.fetch({ method: 'GET', url, scopes: ['repository:a:pull'] })).discard();
    await (await c.fetch({ method: 'GET', url, scopes: ['repository:a:pull'] })).discard();
    expect(issued.length).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    await (await c.fetch({ method: 'GET', url, scopes: ['repository:a:pull'] })).discard();
    expect(issued.length).toBe(2);
  });

  it('uses the OAuth2 refresh-token grant for identity tokens', async () => {
    const { reg, auth } = await tokenRegistry();
    const c = new RegistryClient(reg.host, { plainHttp: true, credential: { identityToken: 'refresh-me' } });
    cleanups.push(() => c.close());
    await (await c.fetch({ method: 'GET', url: new URL('/v2/a/x', await c.baseUrl()), scopes: ['repository:a:pull'] })).discard();
    const form = new URLSearchParams(auth.requests[0]!.body.toString());
    expect(auth.requests[0]!.method).toBe('POST');
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'refresh_token', refresh_token: 'refresh-me', client_id: 'tsbuild', service: 'svc', scope: 'repository:a:pull' });
  });

  it('reports a failing token service as UNAUTHORIZED naming the registry', async () => {
    const auth = await serve((_req, _b, res) => {
      res.writeHead(401);
      res.end('{"details":"incorrect username or password"}');
    });
    const reg = await serve((_req, _b, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${auth.origin}/token"` });
      res.end();
    });
    cleanups.push(() => reg.close(), () => auth.close());
    const c = new RegistryClient(reg.host, { plainHttp: true, credential: { username: 'me', password: 'bad' } });
    cleanups.push(() => c.close());
    const err = await c.fetch({ method: 'GET', url: new URL('/v2/x', await c.baseUrl()) }).catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(new RegExp(`^authenticating to ${reg.host} as me: .*\\(401 UNAUTHORIZED\\)$`));
  });

  it('sends Basic credentials to a basic-auth registry only', async () => {
    const other = await serve((req, _b, res) => res.end(req.headers.authorization ?? 'none'));
    const reg = await serve((req, _b, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
        res.end();
        return;
      }
      res.end(req.headers.authorization);
    });
    cleanups.push(() => reg.close(), () => other.close());
    const c = new RegistryClient(reg.host, { plainHttp: true, credential: { username: 'a', password: 'b' } });
    cleanups.push(() => c.close());
    const r = await c.fetch({ method: 'GET', url: new URL('/v2/x', await c.baseUrl()) });
    expect(await r.text()).toBe(`Basic ${Buffer.from('a:b').toString('base64')}`);
    const o = await c.fetch({ method: 'GET', url: new URL(`${other.origin}/elsewhere`) });
    expect(await o.text()).toBe('none');
  });
});
