/**
 * Registry faults beyond the transport tests in test/integration/registry/faults.test.ts: slow
 * loris (a body that goes silent), 502/503 storms, and a manifest whose content does not match
 * the digest it was asked by. Each pull retries/resumes or fails with a clear error, never stores
 * a wrong byte, and stays within a bounded time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { parseReference } from '../../../src/oci/reference.js';
import { pull } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { httpTransport } from '../../../registry/transport/fetch.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const why = registrySkipReason();
if (why) console.warn(`skip: ${why}`);

const fast = { retry: { baseDelayMs: 5, maxDelayMs: 200 } } as const;

describe.skipIf(!!why)('registry faults: slow loris, 5xx storms, lying manifests', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let img: RandomImage;
  let other: RandomImage;
  const dirs: string[] = [];
  const tempStore = async (): Promise<FileContentStore> => {
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
    dirs.push(d);
    return new FileContentStore(d);
  };

  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
    img = await randomImage({ layers: 2, layerBytes: 600_000 });
    other = await randomImage({ layers: 1, layerBytes: 1000 });
    await push(parseReference(`${reg.host}/faults2/base:v1`), { store: img.store, descriptor: img.manifest });
    await push(parseReference(`${reg.host}/faults2/other:v1`), { store: other.store, descriptor: other.manifest });
  });
  afterEach(() => {
    proxy.rules.length = 0;
    proxy.log.length = 0;
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    await img?.cleanup();
    await other?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a blob body that goes silent (slow loris) is abandoned after the idle timeout and resumed with Range', async () => {
    const layer = img.layers[0]!;
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), times: 2, action: { kind: 'stall', bytes: 200_000 } });
    const http = httpTransport({ bodyTimeoutMs: 700, headersTimeoutMs: 2_000 });
    try {
      const store = await tempStore();
      const t0 = Date.now();
      const d = await pull(parseReference(`${proxy.host}/faults2/base:v1`), store, { ...fast, http });
      const took = Date.now() - t0;
      expect(d.digest).toBe(img.manifest.digest);
      expect(await store.read(layer.digest)).toEqual(await img.store.read(layer.digest));
      const gets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
      // the second attempt already continues from what the first received
      expect(gets.length).toBe(3);
      expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
      // two idle timeouts and the transfer: bounded, far below the 60 s default
      expect(took).toBeLessThan(15_000);
    } finally {
      await http.close();
    }
  });

  it('502/503 storms on blobs are retried with backoff until they pass', async () => {
    const layer = img.layers[1]!;
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), times: 2, action: { kind: 'status', status: 502, body: 'bad gateway' } });
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), times: 1, action: { kind: 'status', status: 503, headers: { 'retry-after': '1' } } });
    const store = await tempStore();
    const d = await pull(parseReference(`${proxy.host}/faults2/base:v1`), store, fast);
    expect(d.digest).toBe(img.manifest.digest);
    const statuses = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest)).map((e) => e.status);
    expect(statuses).toEqual([502, 502, 503, 200]);
  });

  it('a manifest whose content does not match the digest asked for is rejected and not stored', async () => {
    // the registry answers the request for img's manifest digest with another image's manifest
    const lie = await other.store.read(other.manifest.digest);
    proxy.addRule({ method: 'GET', path: new RegExp(`/manifests/${img.manifest.digest}$`), times: 100, action: { kind: 'status', status: 200, headers: { 'content-type': other.manifest.mediaType, 'docker-content-digest': img.manifest.digest }, body: lie.toString('utf8') } });
    const store = await tempStore();
    const err = await pull(parseReference(`${proxy.host}/faults2/base@${img.manifest.digest}`), store, fast).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(img.manifest.digest);
    expect(err.message).toMatch(/digest/i);
    expect(await store.has(img.manifest.digest)).toBe(false);
    expect(await store.has(other.manifest.digest)).toBe(false);
    expect(await store.has(other.layers[0]!.digest)).toBe(false);
  });

  it('a manifest that does not match its tag\'s Docker-Content-Digest is rejected', async () => {
    const lie = await other.store.read(other.manifest.digest);
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1$/, times: 100, action: { kind: 'status', status: 200, headers: { 'content-type': other.manifest.mediaType, 'docker-content-digest': img.manifest.digest }, body: lie.toString('utf8') } });
    const store = await tempStore();
    const err = await pull(parseReference(`${proxy.host}/faults2/base:v1`), store, fast).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/digest/i);
    expect(await store.has(other.manifest.digest)).toBe(false);
  });
});
