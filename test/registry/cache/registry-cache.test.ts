/**
 * The registry build cache against a real registry (distribution 2.8): export and load back,
 * a missing reference, something that is not a cache, a hostile config, a corrupted blob
 * (never stored), and an export the registry refuses (error names the reference and status).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { sha256 } from '../../../src/oci/digest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { parseReference } from '../../../src/oci/reference.js';
import { ContentError } from '../../../src/util/errors.js';
import { CACHE_CONFIG_MEDIA_TYPE, encodeCacheManifest, type CacheEntry } from '../../../registry/cache/format.js';
import { exportRegistryCache, RegistryCacheSource } from '../../../registry/cache/registry-cache.js';
import { push, uploadBlob } from '../../../registry/remote/push.js';
import { Repository } from '../../../registry/remote/repository.js';
import { RegistryError } from '../../../registry/transport/errors.js';
import { Readable } from 'node:stream';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const why = registrySkipReason();
if (why) console.warn(`skip: ${why}`);

const fast = { retry: { baseDelayMs: 5, maxDelayMs: 50 }, resumeAttempts: 1 } as const;

describe.skipIf(!!why)('registry build cache', () => {
  let reg: TestRegistry;
  let authReg: TestRegistry;
  let proxy: FaultProxy;
  let img: RandomImage;
  let entries: CacheEntry[];
  const dirs: string[] = [];

  beforeAll(async () => {
    reg = await startRegistry();
    authReg = await startRegistry({ auth: 'htpasswd', users: [{ username: 'u', password: 'p' }] });
    proxy = await startFaultProxy(reg.host);
    img = await randomImage({ layers: 2, layerBytes: 50_000 });
    entries = [
      { key: sha256('step-1'), parent: sha256('base'), created: '2026-01-01T00:00:00Z', layer: { descriptor: img.layers[0]!, diffId: img.diffIds[0]! } },
      { key: sha256('step-2'), parent: sha256('step-1'), created: '2026-01-01T00:00:01Z' },
      { key: sha256('step-3'), parent: sha256('step-2'), created: '2026-01-01T00:00:02Z', layer: { descriptor: img.layers[1]!, diffId: img.diffIds[1]! } },
    ];
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    await authReg?.stop();
    await img?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const open = (d: Descriptor) => img.store.open(d);

  it('exports records with their blobs and loads them back; a second export of the same records is the same manifest', async () => {
    const ref = parseReference(`${reg.host}/cache/app:buildcache`);
    const desc = await exportRegistryCache(ref, entries, open);
    expect(desc.mediaType).toBe(MediaTypes.OciManifest);
    const src = new RegistryCacheSource(ref);
    try {
      const back = await src.load();
      expect(back).toEqual([...entries].sort((a, b) => (a.key < b.key ? -1 : 1)));
      const chunks: Buffer[] = [];
      for await (const c of await src.openBlob(img.layers[1]!)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks)).toEqual(await img.store.read(img.layers[1]!.digest));
    } finally {
      await src.close();
    }
    expect((await exportRegistryCache(ref, [...entries].reverse(), open)).digest).toBe(desc.digest);
  });

  it('a missing reference is MANIFEST_UNKNOWN (or NAME_UNKNOWN) naming it', async () => {
    const src = new RegistryCacheSource(parseReference(`${reg.host}/cache/never:pushed`));
    const err = await src.load().then(() => undefined, (e: unknown) => e);
    await src.close();
    expect(err).toBeInstanceOf(RegistryError);
    expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain((err as RegistryError).code);
    expect((err as RegistryError).message).toContain(`${reg.host}/cache/never:pushed`);
  });

  it('an image that is not a cache is refused with a clear error', async () => {
    const ref = parseReference(`${reg.host}/cache/image:v1`);
    await push(ref, { store: img.store, descriptor: img.manifest });
    const src = new RegistryCacheSource(ref);
    await expect(src.load()).rejects.toThrow(/build cache .*cache\/image:v1: not a build cache \(config media type "application\/vnd.oci.image.config.v1\+json"/);
    await src.close();
  });

  it('a hostile cache config is refused with INVALID_CONFIG naming the record', async () => {
    const ref = parseReference(`${reg.host}/cache/hostile:v1`);
    const config = Buffer.from(JSON.stringify({ version: 1, records: [{ key: sha256('k'), created: '2026-01-01T00:00:00Z', layer: { mediaType: MediaTypes.OciLayerGzip, digest: sha256('not-listed'), size: 3, diffId: sha256('x') } }] }));
    const cd: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(config), size: config.length };
    const repo = new Repository(ref, {}, ['pull', 'push']);
    try {
      await uploadBlob(repo, { descriptor: cd, open: async () => Readable.from([config]) });
      await repo.putManifest('v1', encodeCacheManifest(cd, []), MediaTypes.OciManifest);
    } finally {
      await repo.close();
    }
    const src = new RegistryCacheSource(ref);
    const err = await src.load().then(() => undefined, (e: unknown) => e);
    await src.close();
    expect(err).toBeInstanceOf(ContentError);
    expect((err as ContentError).code).toBe('INVALID_CONFIG');
    expect((err as ContentError).message).toMatch(/records\[0\]\.layer: blob sha256:[0-9a-f]+ is not listed in the manifest's layers/);
  });

  it('a corrupted blob fails verification and is never stored', async () => {
    const ref = parseReference(`${reg.host}/cache/corrupt:v1`);
    await exportRegistryCache(ref, entries, open);
    const layer = img.layers[0]!;
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), times: 10, action: { kind: 'corrupt', at: 100 } });
    const dir = await mkdtemp(join(tmpdir(), 'tsbuild-cache-store-'));
    dirs.push(dir);
    const store = new FileContentStore(dir);
    const src = new RegistryCacheSource(parseReference(`${proxy.host}/cache/corrupt:v1`), fast);
    try {
      expect((await src.load()).length).toBe(3);
      const err = await store.put(await src.openBlob(layer), layer).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ContentError);
      expect((err as ContentError).code).toBe('DIGEST_MISMATCH');
    } finally {
      await src.close();
      proxy.rules.length = 0;
    }
    expect(await store.has(layer.digest)).toBe(false);
  });

  it('an export the registry refuses fails with the reference and status', async () => {
    const ref = parseReference(`${authReg.host}/cache/denied:v1`);
    const err = await exportRegistryCache(ref, entries, open, { ...fast, keychain: { resolve: async () => undefined } }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(401);
    expect((err as RegistryError).message).toContain(`${authReg.host}/cache/denied:v1`);
    expect((err as RegistryError).message).toMatch(/401/);
  });
});
