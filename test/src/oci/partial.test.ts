import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DigestingStream, sha256, type Digest } from '../../../src/oci/digest.js';
import { emptyImage } from '../../../src/oci/empty.js';
import type { Image } from '../../../src/oci/image.js';
import { MediaTypes, type MediaType } from '../../../src/oci/media-types.js';
import { appendLayers } from '../../../src/oci/mutate.js';
import {
  fromCompressedCore,
  fromIndexCore,
  layerFromCore,
  lazy,
  type CompressedImageCore,
  type CompressedLayerCore,
} from '../../../src/oci/partial.js';
import { validateImage } from '../../../src/oci/validate.js';
import { ContentError } from '../../../src/util/errors.js';
import { readAll, readableFrom } from '../../../src/util/streams.js';

interface MemBlob {
  tar: Buffer;
  blob: Buffer;
  digest: Digest;
  diffId: Digest;
  mediaType: MediaType;
}

function memBlob(compression: 'gzip' | 'none', size = 5000): MemBlob {
  const tar = randomBytes(size);
  const blob = compression === 'gzip' ? gzipSync(tar) : tar;
  return { tar, blob, digest: sha256(blob), diffId: sha256(tar), mediaType: compression === 'gzip' ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer };
}

/** A layer core over memory that verifies while streaming, as the contract requires, and counts calls. */
function memLayerCore(b: MemBlob, calls: Record<string, number> = {}): CompressedLayerCore {
  const count = (k: string) => (calls[k] = (calls[k] ?? 0) + 1);
  return {
    digest: async () => (count('digest'), b.digest),
    size: async () => (count('size'), b.blob.length),
    mediaType: async () => (count('mediaType'), b.mediaType),
    compressed: async () => {
      count('compressed');
      const v = new DigestingStream({ digest: b.digest, size: b.blob.length });
      return readableFrom(b.blob).pipe(v);
    },
  };
}

/** Serialises an Image into an in-memory compressed core (what a store or registry would hold). */
async function coreOf(img: Image, blobs: MemBlob[], calls: Record<string, number> = {}): Promise<CompressedImageCore> {
  const count = (k: string) => (calls[k] = (calls[k] ?? 0) + 1);
  const [mt, raw, cfg] = await Promise.all([img.mediaType(), img.rawManifest(), img.rawConfig()]);
  return {
    mediaType: async () => (count('mediaType'), mt),
    rawManifest: async () => (count('rawManifest'), raw),
    rawConfig: async () => (count('rawConfig'), cfg),
    layerByDigest: async (d) => {
      count('layerByDigest');
      const b = blobs.find((x) => x.digest === d);
      if (!b) throw new ContentError('NOT_FOUND', `blob ${d}`);
      return memLayerCore(b);
    },
  };
}

function built(blobs: MemBlob[]): Image {
  return appendLayers(
    emptyImage({ os: 'linux', architecture: 'amd64' }),
    ...blobs.map((b, i) => ({ layer: layerFromCore(memLayerCore(b), b.diffId), history: { created_by: `step ${i}` } })),
  );
}

async function rejects(p: Promise<unknown>, code: string, msg?: RegExp): Promise<ContentError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ContentError);
  expect((e as ContentError).code).toBe(code);
  if (msg) expect((e as ContentError).message).toMatch(msg);
  return e as ContentError;
}

describe('layerFromCore', () => {
  it('asks the core once per accessor and decompresses gzip, verifying the diff id', async () => {
    const b = memBlob('gzip');
    const calls: Record<string, number> = {};
    const l = layerFromCore(memLayerCore(b, calls), b.diffId);
    await Promise.all([l.digest(), l.digest(), l.size(), l.mediaType(), l.descriptor()]);
    expect(calls).toEqual({ digest: 1, size: 1, mediaType: 1 });
    expect(await l.descriptor()).toEqual({ mediaType: MediaTypes.OciLayerGzip, digest: b.digest, size: b.blob.length });
    expect(await l.diffId()).toBe(b.diffId);
    expect((await readAll(await l.uncompressed())).equals(b.tar)).toBe(true);
    expect((await readAll(await l.compressed())).equals(b.blob)).toBe(true);
    // every call is a new stream
    expect((await readAll(await l.uncompressed())).equals(b.tar)).toBe(true);
    expect(calls.compressed).toBe(3);
  });

  it('passes uncompressed layers through', async () => {
    const b = memBlob('none');
    const l = layerFromCore(memLayerCore(b), b.diffId);
    expect((await readAll(await l.uncompressed())).equals(b.tar)).toBe(true);
  });

  const noZstd = spawnSync('sh', ['-c', 'command -v zstd']).status !== 0 ? 'zstd CLI not installed' : '';
  if (noZstd) console.warn('skip: ' + noZstd);
  it.skipIf(!!noZstd)('decompresses zstd layers made by the zstd CLI', async () => {
    const tar = randomBytes(200_000);
    const z = spawnSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 24 });
    expect(z.status).toBe(0);
    const b: MemBlob = { tar, blob: z.stdout, digest: sha256(z.stdout), diffId: sha256(tar), mediaType: MediaTypes.OciLayerZstd };
    const l = layerFromCore(memLayerCore(b), b.diffId);
    expect((await readAll(await l.uncompressed())).equals(tar)).toBe(true);
    const bad = layerFromCore(memLayerCore(b), sha256(''));
    await rejects(readAll(await bad.uncompressed()), 'DIGEST_MISMATCH');
  });

  it('uses the core descriptor when it has one', async () => {
    const b = memBlob('gzip');
    const desc = { mediaType: b.mediaType, digest: b.digest, size: b.blob.length, annotations: { a: 'b' } };
    const l = layerFromCore({ ...memLayerCore(b), descriptor: async () => desc }, b.diffId);
    expect(await l.descriptor()).toEqual(desc);
  });

  it('fails the uncompressed stream when the content does not match the diff id', async () => {
    const b = memBlob('gzip');
    const l = layerFromCore(memLayerCore(b), sha256('something else'));
    await rejects(readAll(await l.uncompressed()), 'DIGEST_MISMATCH', new RegExp(`layer ${b.digest}: uncompressed content`));
  });

  it('fails the uncompressed stream on corrupt gzip', async () => {
    const b = memBlob('gzip');
    const bad = Buffer.from(b.blob);
    bad[bad.length - 6] ^= 0xff; // inside the crc32/isize trailer
    const core: CompressedLayerCore = { ...memLayerCore(b), compressed: async () => readableFrom(bad) };
    const e = await readAll(await layerFromCore(core, b.diffId).uncompressed()).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
  });
});

describe('fromCompressedCore', () => {
  it('derives everything from manifest and config bytes and reads layers only on demand', async () => {
    const blobs = [memBlob('gzip'), memBlob('none', 300)];
    const src = built(blobs);
    const calls: Record<string, number> = {};
    const img = fromCompressedCore(await coreOf(src, blobs, calls));
    const [d1, d2, m] = await Promise.all([img.digest(), img.digest(), img.manifest()]);
    expect(d1).toBe(await src.digest());
    expect(d2).toBe(d1);
    expect(calls.rawManifest).toBe(1);
    expect(await img.size()).toBe((await src.rawManifest()).length);
    expect(await img.mediaType()).toBe(MediaTypes.OciManifest);
    expect(m.layers.map((l) => l.digest)).toEqual(blobs.map((b) => b.digest));
    expect(await img.configName()).toBe(m.config.digest);
    expect((await img.config()).rootfs.diff_ids).toEqual(blobs.map((b) => b.diffId));

    const layers = await img.layers();
    expect(await Promise.all(layers.map((l) => l.diffId()))).toEqual(blobs.map((b) => b.diffId));
    expect(await Promise.all(layers.map((l) => l.mediaType()))).toEqual([MediaTypes.OciLayerGzip, MediaTypes.OciLayer]);
    expect(calls.layerByDigest).toBeUndefined();
    expect((await readAll(await layers[0]!.uncompressed())).equals(blobs[0]!.tar)).toBe(true);
    expect(calls.layerByDigest).toBe(1);
    // the same layer object caches its core
    await readAll(await layers[0]!.compressed());
    expect(calls.layerByDigest).toBe(1);

    expect(await (await img.layerByDigest(blobs[1]!.digest)).diffId()).toBe(blobs[1]!.diffId);
    expect(await (await img.layerByDiffId(blobs[1]!.diffId)).digest()).toBe(blobs[1]!.digest);
    const cfgLayer = await img.layerByDigest(m.config.digest);
    expect((await readAll(await cfgLayer.compressed())).equals(Buffer.from(await img.rawConfig()))).toBe(true);
    expect(await cfgLayer.mediaType()).toBe(MediaTypes.OciConfig);
    await rejects(img.layerByDigest(sha256('nope')), 'NOT_FOUND', /no layer sha256:/);
    await rejects(img.layerByDiffId(blobs[0]!.digest), 'NOT_FOUND', /no layer with diff id/);
    await validateImage(img, { layerContent: true });
  });

  it('verifies the config bytes against the manifest', async () => {
    const blobs = [memBlob('gzip')];
    const core = await coreOf(built(blobs), blobs);
    const raw = await core.rawConfig();
    const tampered = Buffer.from(raw);
    tampered[tampered.length - 2] = 0x20; // same size, different content
    await rejects(fromCompressedCore({ ...core, rawConfig: async () => tampered }).config(), 'DIGEST_MISMATCH', /^config sha256:/);
    await rejects(fromCompressedCore({ ...core, rawConfig: async () => Buffer.concat([raw, Buffer.from(' ')]) }).rawConfig(), 'SIZE_MISMATCH');
  });

  it('rejects malformed manifests and configs with the field named', async () => {
    const blobs = [memBlob('gzip')];
    const core = await coreOf(built(blobs), blobs);
    await rejects(fromCompressedCore({ ...core, rawManifest: async () => Buffer.from('{"schemaVersion":2,') }).manifest(), 'INVALID_MANIFEST', /not valid json/);
    const m = JSON.parse(Buffer.from(await core.rawManifest()).toString());
    m.layers[0].digest = 'sha256:xyz';
    await rejects(fromCompressedCore({ ...core, rawManifest: async () => Buffer.from(JSON.stringify(m)) }).layers(), 'INVALID_MANIFEST', /manifest\.layers\[0\]\.digest: invalid digest "sha256:xyz"/);
  });

  it('reports a missing diff id when it is asked for', async () => {
    const blobs = [memBlob('gzip')];
    const src = built(blobs);
    const cfg = JSON.parse(Buffer.from(await src.rawConfig()).toString());
    cfg.rootfs.diff_ids = [];
    const rawConfig = Buffer.from(JSON.stringify(cfg));
    const m = JSON.parse(Buffer.from(await src.rawManifest()).toString());
    m.config.digest = sha256(rawConfig);
    m.config.size = rawConfig.length;
    const core = await coreOf(src, blobs);
    const img = fromCompressedCore({ ...core, rawManifest: async () => Buffer.from(JSON.stringify(m)), rawConfig: async () => rawConfig });
    const layers = await img.layers();
    await rejects(layers[0]!.diffId(), 'INVALID_CONFIG', /no rootfs\.diff_ids\[0\]/);
    await rejects(validateImage(img), 'INVALID_CONFIG', /diff_ids: has 0 entries but the manifest has 1 layers/);
  });

  it('retries after a failed fetch instead of caching the failure', async () => {
    const blobs = [memBlob('gzip')];
    const core = await coreOf(built(blobs), blobs);
    let n = 0;
    const img = fromCompressedCore({
      ...core,
      rawManifest: async () => {
        if (n++ === 0) throw new ContentError('IO', 'transient');
        return core.rawManifest();
      },
    });
    await rejects(img.manifest(), 'IO');
    expect((await img.manifest()).schemaVersion).toBe(2);
  });
});

describe('lazy', () => {
  it('shares one promise between concurrent callers', async () => {
    let n = 0;
    const f = lazy(async () => ++n);
    expect(await Promise.all([f(), f(), f()])).toEqual([1, 1, 1]);
    expect(await f()).toBe(1);
  });
});

describe('fromIndexCore', () => {
  it('parses the index and resolves only listed children', async () => {
    const child = built([memBlob('gzip')]);
    const childDigest = await child.digest();
    const raw = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciIndex,
        manifests: [{ mediaType: MediaTypes.OciManifest, digest: childDigest, size: await child.size(), platform: { os: 'linux', architecture: 'amd64' } }],
      }),
    );
    let rawCalls = 0;
    const idx = fromIndexCore({
      mediaType: async () => MediaTypes.OciIndex,
      rawManifest: async () => (rawCalls++, raw),
      image: async (d) => (d === childDigest ? child : Promise.reject(new Error('unexpected'))),
      index: async () => Promise.reject(new Error('unexpected')),
    });
    expect(await idx.digest()).toBe(sha256(raw));
    expect(await idx.size()).toBe(raw.length);
    expect((await idx.manifest()).manifests).toHaveLength(1);
    expect(await (await idx.image(childDigest)).digest()).toBe(childDigest);
    await rejects(idx.image(sha256('other')), 'NOT_FOUND', /no manifest sha256:/);
    await rejects(idx.index(sha256('other')), 'NOT_FOUND');
    expect(rawCalls).toBe(1);
  });

  it('rejects a manifest served as an index', async () => {
    const child = built([memBlob('gzip')]);
    const idx = fromIndexCore({
      mediaType: async () => MediaTypes.OciIndex,
      rawManifest: () => child.rawManifest(),
      image: async () => child,
      index: async () => Promise.reject(new Error('unexpected')),
    });
    await rejects(idx.manifest(), 'INVALID_MANIFEST', /index\.mediaType: .* is not an index media type/);
  });
});

describe('fromCompressedCore config()', () => {
  it('hands out copies, so callers cannot corrupt the cached config', async () => {
    const blobs = [memBlob('gzip')];
    const img = fromCompressedCore(await coreOf(built(blobs), blobs));
    (await img.config()).rootfs.diff_ids.pop();
    expect((await img.config()).rootfs.diff_ids).toHaveLength(1);
    await validateImage(img);
  });
});
