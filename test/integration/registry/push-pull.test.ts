import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { parseReference } from '../../../src/oci/reference.js';
import { pull, pullDetailed } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { remoteHead, remoteImage } from '../../../registry/remote/image.js';
import { RegistryError } from '../../../registry/transport/errors.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const why = registrySkipReason();
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('push/pull against docker-registry (open)', () => {
  let reg: TestRegistry;
  let img: RandomImage;
  const dirs: string[] = [];
  const tempStore = async (): Promise<FileContentStore> => {
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
    dirs.push(d);
    return new FileContentStore(d);
  };

  beforeAll(async () => {
    reg = await startRegistry();
    img = await randomImage({ layers: 3, layerBytes: 200_000 });
  });
  afterAll(async () => {
    await reg?.stop();
    await img?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('round-trips an image with identical digests', async () => {
    const ref = parseReference(`${reg.host}/demo/app:v1`);
    const pushed = await push(ref, { store: img.store, descriptor: img.manifest });
    expect(pushed.digest).toBe(img.manifest.digest);
    expect(pushed.mediaType).toBe(img.manifest.mediaType);

    const head = await remoteHead(ref);
    expect(head.digest).toBe(img.manifest.digest);
    expect(head.size).toBe(img.manifest.size);

    const store = await tempStore();
    const got = await pull(ref, store);
    expect(got).toEqual({ mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size });
    for (const l of [...img.layers, img.config]) {
      expect(await store.has(l.digest)).toBe(true);
      expect(await store.read(l.digest)).toEqual(await img.store.read(l.digest));
    }
    expect(await store.read(img.manifest.digest)).toEqual(await img.store.read(img.manifest.digest));

    // a second pull downloads nothing
    const again = await pullDetailed(ref, store);
    expect(again.downloaded).toBe(0);
  });

  it('reads a remote image lazily and pushes it under another name by digest', async () => {
    const ref = parseReference(`${reg.host}/demo/app:v1`);
    const remote = await remoteImage(ref);
    expect(await remote.digest()).toBe(img.manifest.digest);
    const cfg = await remote.config();
    expect(cfg.rootfs.diff_ids).toEqual(img.diffIds);
    const layers = await remote.layers();
    expect(await layers[0]!.diffId()).toBe(img.diffIds[0]);

    const dest = parseReference(`${reg.host}/other/copy@${img.manifest.digest}`);
    const d = await push(dest, remote, { mountFrom: ['demo/app'] });
    expect(d.digest).toBe(img.manifest.digest);
    expect((await remoteHead(dest)).digest).toBe(img.manifest.digest);
  });

  it('names the reference and the status for an unknown tag', async () => {
    const ref = parseReference(`${reg.host}/demo/app:nope`);
    const store = await tempStore();
    const err = await pull(ref, store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).code).toBe('MANIFEST_UNKNOWN');
    expect((err as RegistryError).status).toBe(404);
    expect((err as RegistryError).message).toBe(`pulling ${reg.host}/demo/app:nope: manifest unknown (404 MANIFEST_UNKNOWN)`);
  });
});
