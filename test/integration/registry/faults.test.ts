import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { parseReference } from '../../../src/oci/reference.js';
import { ContentError } from '../../../src/util/errors.js';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { digestHex } from '../../../src/oci/digest.js';
import { pull } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { remoteHead } from '../../../registry/remote/image.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const why = registrySkipReason();
if (why) console.warn(`skip: ${why}`);

const fast = { retry: { baseDelayMs: 5, maxDelayMs: 5_000 } } as const;

describe.skipIf(!!why)('registry faults through a proxy', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let img: RandomImage;
  const dirs: string[] = [];
  const tempStore = async (): Promise<FileContentStore> => {
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
    dirs.push(d);
    return new FileContentStore(d);
  };
  const blobPath = (d: string): RegExp => new RegExp(`/blobs/${d}$`);

  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
    img = await randomImage({ layers: 2, layerBytes: 400_000 });
    await push(parseReference(`${reg.host}/faults/base:v1`), { store: img.store, descriptor: img.manifest });
  });
  afterEach(() => {
    proxy.rules.length = 0;
    proxy.log.length = 0;
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    await img?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('resumes a dropped layer download with Range', async () => {
    const layer = img.layers[1]!;
    proxy.addRule({ method: 'GET', path: blobPath(layer.digest), ranged: false, action: { kind: 'drop-response', bytes: 150_000 } });
    const store = await tempStore();
    const d = await pull(parseReference(`${proxy.host}/faults/base:v1`), store, fast);
    expect(d.digest).toBe(img.manifest.digest);
    expect(await store.read(layer.digest)).toEqual(await img.store.read(layer.digest));
    const gets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
    expect(gets.length).toBe(2);
    expect(gets[0]!.rule).toBe('drop-response');
    const from = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(150_000);
    expect(gets[1]!.status).toBe(206);
  });

  it('resumes a body that ends short', async () => {
    const layer = img.layers[0]!;
    proxy.addRule({ method: 'GET', path: blobPath(layer.digest), action: { kind: 'truncate', bytes: 1000 } });
    const store = await tempStore();
    await pull(parseReference(`${proxy.host}/faults/base:v1`), store, fast);
    expect(await store.has(layer.digest)).toBe(true);
    const gets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
    expect(gets.map((g) => g.range)).toEqual([undefined, 'bytes=1000-']);
  });

  it('retries 500 and honours 429 Retry-After', async () => {
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1$/, times: 2, action: { kind: 'status', status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"boom"}]}' } });
    proxy.addRule({ method: 'GET', path: new RegExp(img.config.digest), action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    const store = await tempStore();
    const t0 = Date.now();
    const d = await pull(parseReference(`${proxy.host}/faults/base:v1`), store, fast);
    expect(d.digest).toBe(img.manifest.digest);
    const manifestGets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith('/manifests/v1'));
    expect(manifestGets.map((e) => e.status)).toEqual([500, 500, 200]);
    const cfgGets = proxy.log.filter((e) => e.path.endsWith(img.config.digest) && e.method === 'GET');
    expect(cfgGets.map((e) => e.status)).toEqual([429, 200]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('gives up on a persistent 500 with the registry message', async () => {
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1$/, times: 100, action: { kind: 'status', status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"Down For Maintenance"}]}' } });
    const err = await pull(parseReference(`${proxy.host}/faults/base:v1`), await tempStore(), { retry: { attempts: 3, baseDelayMs: 5 } }).catch((e: unknown) => e as Error);
    expect(err.message).toBe(`pulling ${proxy.host}/faults/base:v1: down for maintenance (503 UNAVAILABLE)`);
    expect(proxy.log.filter((e) => e.path.endsWith('/manifests/v1')).length).toBe(3);
  });

  it('rejects a blob with the wrong digest and never stores it', async () => {
    const layer = img.layers[0]!;
    proxy.addRule({ method: 'GET', path: blobPath(layer.digest), times: 100, action: { kind: 'corrupt', at: 4242 } });
    const store = await tempStore();
    const err = await pull(parseReference(`${proxy.host}/faults/base:v1`), store, fast).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContentError);
    expect((err as ContentError).code).toBe('DIGEST_MISMATCH');
    expect(await store.has(layer.digest)).toBe(false);
    expect(await store.has(img.manifest.digest)).toBe(false);
  });

  it('resumes a dropped chunked upload from the Range the registry reports', async () => {
    const big = await randomImage({ layers: 1, layerBytes: 600_000 });
    try {
      const layer = big.layers[0]!;
      // The first PATCH passes; the second dies after 20 kB, and nothing of it reaches the registry.
      const ref = parseReference(`${proxy.host}/faults/upload:v1`);
      proxy.addRule({ name: 'first-chunk-passes', method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'pass' } });
      proxy.addRule({ name: 'drop-2nd-chunk', method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'drop-request', bytes: 20_000 } });
      const d = await push(ref, { store: big.store, descriptor: big.manifest }, { ...fast, chunkThreshold: 100_000, chunkSize: 128 << 10 });
      expect(d.digest).toBe(big.manifest.digest);
      const log = proxy.log.filter((e) => e.path.includes('/blobs/uploads/'));
      const patchLog = log.filter((e) => e.method === 'PATCH');
      expect(patchLog[1]!.rule).toBe('drop-2nd-chunk');
      // after the drop the client asked where to continue, then re-sent from 128 KiB
      const status = log.find((e, i) => i > log.indexOf(patchLog[1]!) && e.method === 'GET');
      expect(status?.status).toBe(204);
      expect(patchLog[2]!.contentRange).toBe(`${128 << 10}-${(256 << 10) - 1}`);
      expect(patchLog.length).toBe(Math.ceil(layer.size / (128 << 10)) + 1);
      // and what the registry has is right
      const store = await tempStore();
      await pull(parseReference(`${reg.host}/faults/upload:v1`), store);
      expect(await store.read(layer.digest)).toEqual(await big.store.read(layer.digest));
    } finally {
      await big.cleanup();
    }
  });

  it('retries a monolithic upload whose connection dropped', async () => {
    const small = await randomImage({ layers: 1, layerBytes: 50_000 });
    try {
      proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\/.*digest=/, times: 1, action: { kind: 'drop-request', bytes: 10_000 } });
      const ref = parseReference(`${proxy.host}/faults/mono:v1`);
      const d = await push(ref, { store: small.store, descriptor: small.manifest }, fast);
      expect(d.digest).toBe(small.manifest.digest);
      expect((await remoteHead(parseReference(`${reg.host}/faults/mono:v1`))).digest).toBe(small.manifest.digest);
      const puts = proxy.log.filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/'));
      expect(puts[0]!.rule).toBe('drop-request');
    } finally {
      await small.cleanup();
    }
  });

  it('continues a download left by an earlier run from its partial file', async () => {
    const layer = img.layers[1]!;
    const bytes = await img.store.read(layer.digest);
    const store = await tempStore();
    const partialDir = join(store.root, 'tmp', 'partial');
    await mkdir(partialDir, { recursive: true });
    await writeFile(join(partialDir, `${digestHex(layer.digest)}.partial`), bytes.subarray(0, 123_456));
    const d = await pull(parseReference(`${proxy.host}/faults/base:v1`), store, { ...fast, partialDir });
    expect(d.digest).toBe(img.manifest.digest);
    expect(await store.read(layer.digest)).toEqual(bytes);
    const gets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
    expect(gets.map((g) => g.range)).toEqual(['bytes=123456-']);
    expect(await readdir(partialDir)).toEqual([]);
  });

  it('keeps the partial file when a run fails, and the next run finishes it', async () => {
    const layer = img.layers[0]!;
    const store = await tempStore();
    const partialDir = join(store.root, 'tmp', 'partial');
    // every attempt of this run dies after 100 kB
    proxy.addRule({ method: 'GET', path: blobPath(layer.digest), times: 2, action: { kind: 'drop-response', bytes: 100_000 } });
    proxy.addRule({ method: 'GET', path: blobPath(layer.digest), times: 100, action: { kind: 'status', status: 503 } });
    const err = await pull(parseReference(`${proxy.host}/faults/base:v1`), store, { retry: { attempts: 1 }, resumeAttempts: 1, partialDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await store.has(layer.digest)).toBe(false);
    const left = await readdir(partialDir);
    expect(left).toEqual([`${digestHex(layer.digest)}.partial`]);
    proxy.rules.length = 0;
    proxy.log.length = 0;
    await pull(parseReference(`${proxy.host}/faults/base:v1`), store, { ...fast, partialDir });
    expect(await store.read(layer.digest)).toEqual(await img.store.read(layer.digest));
    const from = Number(/^bytes=(\d+)-$/.exec(proxy.log.find((e) => e.path.endsWith(layer.digest))?.range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(await readdir(partialDir)).toEqual([]);
  });

  it('drops a partial file that does not verify and downloads the blob again', async () => {
    const layer = img.layers[1]!;
    const store = await tempStore();
    const partialDir = join(store.root, 'tmp', 'partial');
    await mkdir(partialDir, { recursive: true });
    await writeFile(join(partialDir, `${digestHex(layer.digest)}.partial`), Buffer.alloc(1000, 7));
    await pull(parseReference(`${proxy.host}/faults/base:v1`), store, { ...fast, partialDir });
    expect(await store.read(layer.digest)).toEqual(await img.store.read(layer.digest));
    const gets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
    expect(gets.map((g) => g.range)).toEqual(['bytes=1000-', undefined]);
  });
});
