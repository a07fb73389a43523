import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { compose, httpTransport, type HttpTransport } from '../../../registry/transport/fetch.js';
import { redirects, retry, timeout, userAgent } from '../../../registry/transport/middleware.js';
import { RegistryError } from '../../../registry/transport/errors.js';
import { serve, type LocalServer } from '../serve.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
async function server(h: Parameters<typeof serve>[0]): Promise<LocalServer> {
  const s = await serve(h);
  cleanups.push(() => s.close());
  return s;
}
function transport(): HttpTransport {
  const t = httpTransport({ connections: 2 });
  cleanups.push(() => t.close());
  return t;
}

describe('retry', () => {
  it('retries 503 then returns the 200, honouring Retry-After', async () => {
    let n = 0;
    const s = await server((_req, _b, res) => {
      n++;
      if (n < 3) {
        res.writeHead(503, { 'retry-after': n === 2 ? '1' : '0' });
        res.end();
        return;
      }
      res.end('ok');
    });
    const f = compose(transport().fetch, retry({ baseDelayMs: 1 }));
    const t0 = Date.now();
    const res = await f({ method: 'GET', url: new URL(`${s.origin}/x`) });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(n).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('gives up after the attempts and returns the last response', async () => {
    const s = await server((_req, _b, res) => {
      res.writeHead(500);
      res.end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
    });
    const f = compose(transport().fetch, retry({ attempts: 3, baseDelayMs: 1 }));
    const res = await f({ method: 'GET', url: new URL(`${s.origin}/x`) });
    expect(res.status).toBe(500);
    await res.discard();
    expect(s.requests.length).toBe(3);
  });

  it('does not retry a POST, nor a request whose body is a one-shot stream', async () => {
    const s = await server((_req, _b, res) => {
      res.writeHead(503);
      res.end();
    });
    const f = compose(transport().fetch, retry({ baseDelayMs: 1 }));
    await (await f({ method: 'POST', url: new URL(`${s.origin}/a`) })).discard();
    await (await f({ method: 'PUT', url: new URL(`${s.origin}/b`), body: Readable.from([Buffer.from('x')]), headers: { 'content-length': '1' } })).discard();
    expect(s.requests.map((r) => r.url)).toEqual(['/a', '/b']);
    // a replayable body is sent again, whole
    await (await f({ method: 'PUT', url: new URL(`${s.origin}/c`), body: () => Readable.from([Buffer.from('abc')]), headers: { 'content-length': '3' } })).discard();
    expect(s.requests.filter((r) => r.url === '/c').map((r) => r.body.toString())).toEqual(['abc', 'abc', 'abc', 'abc', 'abc']);
  });

  it('retries a connection reset', async () => {
    let n = 0;
    const s = await server((req, _b, res) => {
      if (n++ === 0) {
        req.socket.destroy();
        return;
      }
      res.end('fine');
    });
    const f = compose(transport().fetch, retry({ baseDelayMs: 1 }));
    const res = await f({ method: 'GET', url: new URL(`${s.origin}/x`) });
    expect(await res.text()).toBe('fine');
    expect(n).toBe(2);
  });

  it('stops waiting when aborted', async () => {
    const s = await server((_req, _b, res) => {
      res.writeHead(503, { 'retry-after': '30' });
      res.end();
    });
    const f = compose(transport().fetch, retry());
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = await f({ method: 'GET', url: new URL(`${s.origin}/x`) }, ac.signal).catch((e: unknown) => e as RegistryError);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code).toBe('ABORTED');
  });
});

describe('redirects', () => {
  it('follows a cross-origin redirect and drops Authorization; keeps it on the same origin', async () => {
    const cdn = await server((req, _b, res) => res.end(`cdn:${req.headers.authorization ?? 'none'}`));
    const reg = await server((req, _b, res) => {
      if (req.url === '/blob') {
        res.writeHead(307, { location: `${cdn.origin}/signed?sig=1` });
        res.end();
      } else if (req.url === '/moved') {
        res.writeHead(301, { location: '/here' });
        res.end();
      } else res.end(`reg:${req.headers.authorization ?? 'none'}`);
    });
    const f = compose(transport().fetch, userAgent('tsbuild-test'), redirects());
    const a = await f({ method: 'GET', url: new URL(`${reg.origin}/blob`), headers: { authorization: 'Bearer secret' } });
    expect(await a.text()).toBe('cdn:none');
    expect(a.url.origin).toBe(cdn.origin);
    const b = await f({ method: 'GET', url: new URL(`${reg.origin}/moved`), headers: { authorization: 'Bearer secret' } });
    expect(await b.text()).toBe('reg:Bearer secret');
    expect(reg.requests[0]!.headers['user-agent']).toBe('tsbuild-test');
  });

  it('turns 303 into GET and limits the hops', async () => {
    const s = await server((req, _b, res) => {
      if (req.url === '/post') {
        res.writeHead(303, { location: '/result' });
        res.end();
      } else if (req.url === '/loop') {
        res.writeHead(302, { location: '/loop' });
        res.end();
      } else res.end(req.method);
    });
    const f = compose(transport().fetch, redirects(3));
    const r = await f({ method: 'POST', url: new URL(`${s.origin}/post`), body: 'x', headers: { 'content-length': '1' } });
    expect(await r.text()).toBe('GET');
    const err = await f({ method: 'GET', url: new URL(`${s.origin}/loop`) }).catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('TOO_MANY_REDIRECTS');
  });
});

describe('timeout', () => {
  it('aborts a request that takes too long', async () => {
    const s = await server(async (_req, _b, res) => {
      await new Promise((r) => setTimeout(r, 2000));
      res.end('late');
    });
    const f = compose(transport().fetch, timeout(100));
    const t0 = Date.now();
    const err = await f({ method: 'GET', url: new URL(`${s.origin}/slow`) }).catch((e: unknown) => e as RegistryError);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code).toBe('TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});
