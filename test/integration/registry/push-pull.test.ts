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
import { copy } from '../../../registry/copy.js';
import { addReferrerToTag, referrers, referrersTag } from '../../../registry/remote/referrers.js';
import { sha256 } from '../../../src/oci/digest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { copyGraph } from '../../../src/oci/layout/graph.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import type { TransferProgress } from '../../../registry/remote/options.js';
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
    const events: { digest: string; mounted?: boolean; skipped?: boolean }[] = [];
    const d = await push(dest, remote, { mountFrom: ['demo/app'], onProgress: (e) => events.push(e) });
    expect(d.digest).toBe(img.manifest.digest);
    // every blob was mounted from demo/app, none uploaded
    expect(events.filter((e) => e.mounted).map((e) => e.digest).sort()).toEqual([img.config.digest, ...img.layers.map((l) => l.digest)].sort());
    expect((await remoteHead(dest)).digest).toBe(img.manifest.digest);
  });

  it('reports start, growing progress and done per blob, for monolithic and chunked uploads and for downloads', async () => {
    const pushed: TransferProgress[] = [];
    const pulled: TransferProgress[] = [];
    const ref = parseReference(`${reg.host}/demo/progress:v1`);
    // a chunk threshold below the layer size makes the layers go in PATCH chunks
    await push(ref, { store: img.store, descriptor: img.manifest }, { chunkThreshold: 100_000, chunkSize: 64 << 10, onProgress: (e) => pushed.push(e) });
    const store = await tempStore();
    await pull(ref, store, { onProgress: (e) => pulled.push(e) });
    const blobs = [img.config, ...img.layers];
    for (const phase of [pushed, pulled]) {
      for (const b of blobs) {
        const mine = phase.filter((e) => e.digest === b.digest);
        expect(mine[0]).toEqual({ digest: b.digest, state: 'start', done: 0, total: b.size });
        expect(mine.at(-1)).toEqual({ digest: b.digest, state: 'done', done: b.size, total: b.size });
        const mid = mine.slice(1, -1);
        expect(mid.every((e) => e.state === 'progress' && e.total === b.size)).toBe(true);
        for (let i = 1; i < mid.length; i++) expect(mid[i]!.done).toBeGreaterThan(mid[i - 1]!.done);
        if (b.size > 100_000) expect(mid.length).toBeGreaterThan(2);
      }
    }
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

  it('round-trips a Docker schema 2 image', async () => {
    const dimg = await randomImage({ layers: 1, layerBytes: 10_000, flavour: 'docker' });
    try {
      const ref = parseReference(`${reg.host}/demo/docker:v1`);
      const d = await push(ref, { store: dimg.store, descriptor: dimg.manifest });
      expect(d).toEqual({ mediaType: MediaTypes.DockerManifest, digest: dimg.manifest.digest, size: dimg.manifest.size });
      const head = await remoteHead(ref);
      expect(head.mediaType).toBe(MediaTypes.DockerManifest);
      const store = await tempStore();
      expect((await pull(ref, store)).digest).toBe(dimg.manifest.digest);
    } finally {
      await dimg.cleanup();
    }
  });

  it('pushes a multi-platform index and pulls the requested platform only', async () => {
    const a = await randomImage({ layers: 1, layerBytes: 10_000 });
    const b = await randomImage({ layers: 1, layerBytes: 10_000 });
    try {
      const store = await tempStore();
      await copyGraph(a.store, store, a.manifest);
      await copyGraph(b.store, store, b.manifest);
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.OciIndex,
          manifests: [
            { ...a.manifest, platform: { os: 'linux', architecture: 'amd64' } },
            { ...b.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
          ],
        }),
      );
      const idxDesc: Descriptor = await store.put(index, { mediaType: MediaTypes.OciIndex, digest: sha256(index), size: index.length });
      const ref = parseReference(`${reg.host}/demo/multi:v1`);
      const pushed = await push(ref, { store, descriptor: idxDesc });
      expect(pushed.digest).toBe(idxDesc.digest);
      expect(pushed.mediaType).toBe(MediaTypes.OciIndex);

      const dst = await tempStore();
      const res = await pullDetailed(ref, dst, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
      expect(res.descriptor.digest).toBe(idxDesc.digest);
      expect(res.image.digest).toBe(b.manifest.digest);
      expect(await dst.has(b.layers[0]!.digest)).toBe(true);
      expect(await dst.has(a.layers[0]!.digest)).toBe(false);
      expect(await dst.has(idxDesc.digest)).toBe(true);

      // registry → registry copy keeps the whole index (children are mounted/pushed by digest)
      const copied = await copy({ kind: 'docker', ref }, { kind: 'docker', ref: parseReference(`${reg.host}/demo/multi-copy:v1`) });
      expect(copied.digest).toBe(idxDesc.digest);
      expect((await remoteHead(parseReference(`${reg.host}/demo/multi-copy@${a.manifest.digest}`))).digest).toBe(a.manifest.digest);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it('lists referrers through the sha256-<hex> tag on a registry without the referrers API', async () => {
    const subject = img.manifest.digest;
    const store = await tempStore();
    const cfg = Buffer.from('{}');
    await store.put(cfg, { mediaType: MediaTypes.OciEmpty, digest: sha256(cfg), size: 2 });
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciManifest,
        artifactType: 'application/vnd.example.sig',
        config: { mediaType: MediaTypes.OciEmpty, digest: sha256(cfg), size: 2 },
        layers: [],
        subject: img.manifest,
      }),
    );
    const sigDesc = await store.put(sig, { mediaType: MediaTypes.OciManifest, digest: sha256(sig), size: sig.length });
    const ref = parseReference(`${reg.host}/demo/app:v1`);
    expect(await referrers(ref, subject)).toEqual({ source: 'tag', manifests: [] });
    await push(parseReference(`${reg.host}/demo/app@${sigDesc.digest}`), { store, descriptor: sigDesc });
    await addReferrerToTag(ref, subject, { ...sigDesc, artifactType: 'application/vnd.example.sig' });
    await addReferrerToTag(ref, subject, { ...sigDesc, artifactType: 'application/vnd.example.sig' });
    const tagged = await remoteHead(parseReference(`${reg.host}/demo/app:${referrersTag(subject)}`));
    expect(tagged.mediaType).toBe(MediaTypes.OciIndex);
    const got = await referrers(ref, subject, { artifactType: 'application/vnd.example.sig' });
    expect(got.source).toBe('tag');
    expect(got.manifests.map((m) => m.digest)).toEqual([sigDesc.digest]);
  });
});
