import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { parseReference } from '../../../src/oci/reference.js';
import { ContentError } from '../../../src/util/errors.js';
import { pull, selectPlatform } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { referrers, referrersTag } from '../../../registry/remote/referrers.js';
import { RegistryError } from '../../../registry/transport/errors.js';
import { randomImage } from '../../helpers/random-image.js';
import { serve } from '../serve.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
const fast = { retry: { attempts: 2, baseDelayMs: 1 } } as const;

describe('manifest limits and verification', () => {
  it('refuses a manifest over 4 MiB', async () => {
    const s = await serve((_req, _b, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.OciManifest, 'content-length': String(5 << 20) });
      res.end(Buffer.alloc(5 << 20, 32));
    });
    cleanups.push(() => s.close());
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
    cleanups.push(() => rm(d, { recursive: true, force: true }));
    const err = await pull(parseReference(`${s.host}/big/one:v1`), new FileContentStore(d), fast).catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('MANIFEST_TOO_LARGE');
    expect(err.message).toContain(`pulling ${s.host}/big/one:v1`);
  });

  it('refuses a manifest whose bytes do not match the digest asked for, or the Docker-Content-Digest', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: { mediaType: MediaTypes.OciConfig, digest: sha256('{}'), size: 2 }, layers: [] }));
    const wrong = `sha256:${'0'.repeat(64)}` as Digest;
    const s = await serve((req, _b, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.OciManifest, ...(req.url?.endsWith(':v1') || req.url?.endsWith('/v1') ? { 'docker-content-digest': wrong } : {}) });
      res.end(body);
    });
    cleanups.push(() => s.close());
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
    cleanups.push(() => rm(d, { recursive: true, force: true }));
    const store = new FileContentStore(d);
    const e1 = await pull(parseReference(`${s.host}/x/y@${wrong}`), store, fast).catch((e: unknown) => e as ContentError);
    expect(e1).toBeInstanceOf(ContentError);
    expect(e1.code).toBe('DIGEST_MISMATCH');
    const e2 = await pull(parseReference(`${s.host}/x/y:v1`), store, fast).catch((e: unknown) => e as ContentError);
    expect(e2.code).toBe('DIGEST_MISMATCH');
    expect(e2.message).toContain(`registry says the manifest is ${wrong}`);
  });

  it('refuses schema 1 manifests as UNSUPPORTED', async () => {
    const s = await serve((_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
      res.end('{"schemaVersion":1,"name":"x","tag":"v1","fsLayers":[]}');
    });
    cleanups.push(() => s.close());
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
    cleanups.push(() => rm(d, { recursive: true, force: true }));
    const err = await pull(parseReference(`${s.host}/old/one:v1`), new FileContentStore(d), fast).catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('UNSUPPORTED');
  });
});

describe('platform selection', () => {
  const m = (os: string, architecture: string, variant?: string): { mediaType: string; digest: Digest; size: number; platform: { os: string; architecture: string; variant?: string } } => ({
    mediaType: MediaTypes.OciManifest,
    digest: sha256(`${os}${architecture}${variant ?? ''}`),
    size: 1,
    platform: variant ? { os, architecture, variant } : { os, architecture },
  });
  it('prefers the exact variant, then os/arch, and ignores attestations', () => {
    const list = [{ ...m('unknown', 'unknown'), annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } }, m('linux', 'arm', 'v6'), m('linux', 'arm', 'v7'), m('linux', 'amd64')];
    expect(selectPlatform(list, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest).toBe(list[2]!.digest);
    expect(selectPlatform(list, { os: 'linux', architecture: 'amd64' })?.digest).toBe(list[3]!.digest);
    expect(selectPlatform(list, { os: 'linux', architecture: 's390x' })).toBeUndefined();
  });
});

describe('chunked upload', () => {
  it('honours OCI-Chunk-Min-Length and sends contiguous Content-Ranges', async () => {
    const img = await randomImage({ layers: 1, layerBytes: 300_000 });
    cleanups.push(() => img.cleanup());
    const blobs = new Map<string, Buffer>();
    const sessions = new Map<string, Buffer[]>();
    let n = 0;
    const s = await serve((req, body, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/v2/') return void res.end('{}');
      if (req.method === 'HEAD' && u.pathname.includes('/blobs/')) {
        const d = u.pathname.split('/').pop()!;
        res.writeHead(blobs.has(d) ? 200 : 404, blobs.has(d) ? { 'content-length': String(blobs.get(d)!.length) } : {});
        return void res.end();
      }
      if (req.method === 'POST') {
        const id = `s${n++}`;
        sessions.set(id, []);
        res.writeHead(202, { location: `/v2/c/up/blobs/uploads/${id}`, 'oci-chunk-min-length': String(100_000), range: '0-0' });
        return void res.end();
      }
      const id = u.pathname.split('/').pop()!;
      if (req.method === 'PATCH') {
        const parts = sessions.get(id)!;
        const have = parts.reduce((a, b) => a + b.length, 0);
        const [start, end] = String(req.headers['content-range']).split('-').map(Number) as [number, number];
        if (start !== have || end - start + 1 !== body.length) {
          res.writeHead(416);
          return void res.end();
        }
        parts.push(body);
        res.writeHead(202, { location: `/v2/c/up/blobs/uploads/${id}`, range: `0-${have + body.length - 1}` });
        return void res.end();
      }
      if (req.method === 'PUT' && u.pathname.includes('/blobs/uploads/')) {
        const all = Buffer.concat([...(sessions.get(id) ?? []), body]);
        const d = `sha256:${createHash('sha256').update(all).digest('hex')}`;
        if (d !== u.searchParams.get('digest')) {
          res.writeHead(400);
          return void res.end('{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid"}]}');
        }
        blobs.set(d, all);
        res.writeHead(201, { location: `/v2/c/up/blobs/${d}` });
        return void res.end();
      }
      if (req.method === 'PUT' && u.pathname.includes('/manifests/')) {
        res.writeHead(201, { 'docker-content-digest': sha256(body) });
        return void res.end();
      }
      res.writeHead(404);
      res.end();
    });
    cleanups.push(() => s.close());
    const d = await push(parseReference(`${s.host}/c/up:v1`), { store: img.store, descriptor: img.manifest }, { ...fast, plainHttp: true, chunkThreshold: 1000, chunkSize: 10_000 });
    expect(d.digest).toBe(img.manifest.digest);
    const layer = img.layers[0]!;
    expect(blobs.get(layer.digest)).toEqual(await img.store.read(layer.digest));
    const patches = s.requests.filter((r) => r.method === 'PATCH').map((r) => r.body.length);
    // chunks of the registry's minimum (100 000), not the configured 10 000; the small config goes in one PUT
    const want = Array.from({ length: Math.ceil(layer.size / 100_000) }, (_, i) => Math.min(100_000, layer.size - i * 100_000));
    expect(patches).toEqual(want);
    expect(s.requests.filter((r) => r.method === 'PATCH').every((r) => r.headers['content-range'] !== undefined)).toBe(true);
  });
});

describe('referrers', () => {
  const subject = sha256('subject');
  const idx = (ms: object[]): string => JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: ms });
  const ref = (at: string, a: string): object => ({ mediaType: MediaTypes.OciManifest, digest: sha256(a), size: 10, artifactType: at });

  it('reads the API and follows Link pagination, filtering by artifactType', async () => {
    const s = await serve((req, _b, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/v2/') return void res.end();
      res.writeHead(200, { 'content-type': MediaTypes.OciIndex, ...(u.searchParams.get('page') ? {} : { link: `</v2/r/s/referrers/${subject}?page=2>; rel="next"` }) });
      res.end(u.searchParams.get('page') ? idx([ref('application/sig', 'b')]) : idx([ref('application/sbom', 'a')]));
    });
    cleanups.push(() => s.close());
    const all = await referrers(parseReference(`${s.host}/r/s:v1`), subject, { plainHttp: true });
    expect(all.source).toBe('api');
    expect(all.manifests.map((m) => m.artifactType)).toEqual(['application/sbom', 'application/sig']);
    const sigs = await referrers(parseReference(`${s.host}/r/s:v1`), subject, { plainHttp: true, artifactType: 'application/sig' });
    expect(sigs.manifests.map((m) => m.digest)).toEqual([sha256('b')]);
  });

  it('falls back to the sha256-<hex> tag when the API is missing, and to nothing when the tag is', async () => {
    let tagExists = true;
    const s = await serve((req, _b, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/v2/') return void res.end();
      if (u.pathname.includes('/referrers/')) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return void res.end('404 page not found');
      }
      if (u.pathname.endsWith(`/manifests/${referrersTag(subject)}`) && tagExists) {
        res.writeHead(200, { 'content-type': MediaTypes.OciIndex });
        return void res.end(idx([ref('application/sig', 'c')]));
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    cleanups.push(() => s.close());
    const r = await referrers(parseReference(`${s.host}/r/s:v1`), subject, { plainHttp: true });
    expect(r).toEqual({ source: 'tag', manifests: [ref('application/sig', 'c')] });
    expect(referrersTag(subject)).toBe(`sha256-${subject.slice(7)}`);
    tagExists = false;
    expect(await referrers(parseReference(`${s.host}/r/s:v1`), subject, { plainHttp: true })).toEqual({ source: 'tag', manifests: [] });
  });
});
