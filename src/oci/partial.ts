/**
 * Minimal "cores" → full Image / Layer / ImageIndex (ggcr pkg/v1/partial). A new image source
 * (registry, layout, store, archive) implements only a core: raw manifest bytes, raw config
 * bytes and blobs by digest; everything derived (digests, sizes, parsed manifest and config,
 * diff ids, lookups, decompression) is done here once, lazily, with promises cached so
 * concurrent callers share one fetch.
 */
import type { Duplex, Readable } from 'node:stream';
import { ContentError } from '../util/errors.js';
import { parseJsonBytes } from '../util/json.js';
import { pipeInto, readableFrom } from '../util/streams.js';
import type { ImageConfig } from './config.js';
import type { Descriptor } from './descriptor.js';
import { DigestingStream, sha256, type Digest } from './digest.js';
import type { Image, ImageIndex, Layer } from './image.js';
import type { ImageManifest, IndexManifest } from './manifest.js';
import { layerCompression, type Compression, type MediaType } from './media-types.js';
import { decompressStream } from './tar/compress.js';
import { validateConfig, validateIndex, validateManifest } from './validate.js';

/**
 * The minimum a compressed layer source provides (ggcr partial.CompressedLayer).
 * `compressed()` MUST return a new stream per call that is verified against `digest()` and
 * `size()` while it streams (errors with DIGEST_MISMATCH / SIZE_MISMATCH instead of ending
 * cleanly), as ContentStore.open does.
 */
export interface CompressedLayerCore {
  digest(): Promise<Digest>;
  size(): Promise<number>;
  mediaType(): Promise<MediaType>;
  compressed(): Promise<Readable>;
  /** The full descriptor (with annotations, urls) when the source knows it. */
  descriptor?(): Promise<Descriptor>;
}

/**
 * The minimum a compressed image source provides (ggcr partial.CompressedImageCore).
 * `rawManifest()` returns the manifest bytes exactly as stored (the image digest is their sha256);
 * `rawConfig()` the config blob bytes (verified here against the manifest's config descriptor).
 * `layerByDigest()` is only called when a layer's bytes are needed.
 */
export interface CompressedImageCore {
  mediaType(): Promise<MediaType>;
  rawManifest(): Promise<Uint8Array>;
  rawConfig(): Promise<Uint8Array>;
  layerByDigest(d: Digest): Promise<CompressedLayerCore>;
}

/** The minimum an index source provides; children are resolved by the core (already wrapped). */
export interface IndexCore {
  mediaType(): Promise<MediaType>;
  rawManifest(): Promise<Uint8Array>;
  image(d: Digest): Promise<Image>;
  index(d: Digest): Promise<ImageIndex>;
}

/**
 * Memoises an async thunk: the first call starts it, later calls share the promise. A rejected
 * promise is dropped from the cache so that a later call retries (a transient fetch failure
 * must not poison the object forever).
 */
export function lazy<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    if (!p) {
      const started = f();
      p = started;
      started.catch(() => {
        if (p === started) p = undefined;
      });
    }
    return p;
  };
}

/**
 * A new decompressing Duplex for `c` ('none' passes through): the tar module's
 * decompressStream (gzip via node:zlib, zstd off the main thread). Throws ContentError
 * UNSUPPORTED_MEDIA_TYPE for an unknown compression.
 */
// NOTE(oci-model): imported from tar/compress.js, not tar/index.js, so that reading an image does
// not load the extraction code and its native bindings.
export function decompressor(c: Compression): Duplex {
  return decompressStream(c);
}

/**
 * The uncompressed tar of a layer, verified against `diffId` while it streams: the returned
 * stream errors with DIGEST_MISMATCH instead of ending when the tar does not hash to the
 * diff id (a config that lies about its layers is caught at unpack, as containerd does).
 * The caller owns the stream.
 */
export async function uncompressedLayer(
  l: Pick<Layer, 'compressed' | 'mediaType' | 'digest'>,
  diffId: Digest,
): Promise<Readable> {
  const [mt, digest] = await Promise.all([l.mediaType(), l.digest()]);
  const d = decompressor(layerCompression(mt));
  let src: Readable;
  try {
    src = await l.compressed();
  } catch (e) {
    d.destroy();
    throw e;
  }
  const verify = new DigestingStream({ digest: diffId, what: `layer ${digest}: uncompressed content` });
  return pipeInto(pipeInto(src, d), verify);
}

/**
 * A Layer from a compressed core and its known diff id. digest/size/mediaType are asked of
 * the core once; `compressed()` asks the core for a new stream per call; `uncompressed()`
 * decompresses per the media type and verifies the diff id.
 */
export function layerFromCore(core: CompressedLayerCore, diffId: Digest): Layer {
  const digest = lazy(() => core.digest());
  const size = lazy(() => core.size());
  const mediaType = lazy(() => core.mediaType());
  const descriptor = lazy(async (): Promise<Descriptor> => {
    if (core.descriptor) return core.descriptor();
    const [d, s, mt] = await Promise.all([digest(), size(), mediaType()]);
    return { mediaType: mt, digest: d, size: s };
  });
  const layer: Layer = {
    digest,
    diffId: async () => diffId,
    size,
    mediaType,
    descriptor,
    compressed: () => core.compressed(),
    uncompressed: () => uncompressedLayer(layer, diffId),
  };
  return layer;
}

/**
 * The config blob presented as a Layer (ggcr partial.ConfigLayer), so blob-oriented code
 * (push, copy) can treat it like any other blob. Its diff id is its digest; both streams
 * give the raw config bytes.
 */
export function configLayer(img: Pick<Image, 'manifest' | 'rawConfig'>): Layer {
  const desc = lazy(async () => (await img.manifest()).config);
  return {
    digest: async () => (await desc()).digest,
    diffId: async () => (await desc()).digest,
    size: async () => (await desc()).size,
    mediaType: async () => (await desc()).mediaType,
    descriptor: desc,
    compressed: async () => readableFrom(await img.rawConfig()),
    uncompressed: async () => readableFrom(await img.rawConfig()),
  };
}

/** The layer a manifest descriptor names; bytes are fetched from the core only when read. */
class ManifestLayer implements Layer {
  readonly #desc: Descriptor;
  readonly #diffId: () => Promise<Digest>;
  readonly #core: () => Promise<CompressedLayerCore>;

  constructor(desc: Descriptor, diffId: () => Promise<Digest>, core: () => Promise<CompressedLayerCore>) {
    this.#desc = desc;
    this.#diffId = diffId;
    this.#core = core;
  }
  async digest(): Promise<Digest> {
    return this.#desc.digest;
  }
  diffId(): Promise<Digest> {
    return this.#diffId();
  }
  async size(): Promise<number> {
    return this.#desc.size;
  }
  async mediaType(): Promise<MediaType> {
    return this.#desc.mediaType;
  }
  async descriptor(): Promise<Descriptor> {
    return this.#desc;
  }
  async compressed(): Promise<Readable> {
    return (await this.#core()).compressed();
  }
  async uncompressed(): Promise<Readable> {
    return uncompressedLayer(this, await this.#diffId());
  }
}

/**
 * A full Image from a compressed core (ggcr partial.CompressedToImage). The manifest and
 * config are parsed and validated on first use; the config bytes are verified against the
 * manifest's config descriptor (DIGEST_MISMATCH / SIZE_MISMATCH); layer i's diff id is the
 * config's `rootfs.diff_ids[i]` (INVALID_CONFIG when missing, reported when it is asked for).
 */
export function fromCompressedCore(core: CompressedImageCore): Image {
  const rawManifest = lazy(() => core.rawManifest());
  const digest = lazy(async () => sha256(await rawManifest()));
  const manifest = lazy(async (): Promise<ImageManifest> => {
    const raw = await rawManifest();
    return validateManifest(parseJsonBytes(raw, `manifest ${sha256(raw)}`, 'INVALID_MANIFEST'));
  });
  const rawConfig = lazy(async () => {
    const [m, raw] = await Promise.all([manifest(), core.rawConfig()]);
    const want = m.config;
    if (raw.byteLength !== want.size) {
      throw new ContentError('SIZE_MISMATCH', `config ${want.digest}: got ${raw.byteLength} bytes, expected ${want.size}`);
    }
    const got = sha256(raw);
    if (got !== want.digest) throw new ContentError('DIGEST_MISMATCH', `config ${want.digest}: content has digest ${got}`);
    return raw;
  });
  const config = lazy(async (): Promise<ImageConfig> => {
    const [m, raw] = await Promise.all([manifest(), rawConfig()]);
    return validateConfig(parseJsonBytes(raw, `config ${m.config.digest}`, 'INVALID_CONFIG'));
  });
  const layers = lazy(async (): Promise<readonly Layer[]> => {
    const m = await manifest();
    return m.layers.map(
      (desc, i) =>
        new ManifestLayer(
          desc,
          async () => {
            const diffId = (await config()).rootfs?.diff_ids?.[i];
            if (diffId === undefined) {
              throw new ContentError('INVALID_CONFIG', `config ${m.config.digest}: no rootfs.diff_ids[${i}] for layer ${desc.digest}`);
            }
            return diffId;
          },
          lazy(() => core.layerByDigest(desc.digest)),
        ),
    );
  });
  const cfgLayer = lazy(async () => configLayer({ manifest, rawConfig }));

  const img: Image = {
    mediaType: () => core.mediaType(),
    digest,
    size: async () => (await rawManifest()).byteLength,
    rawManifest,
    manifest,
    configName: async () => (await manifest()).config.digest,
    rawConfig,
    // a copy per call: ImageConfig is mutable and the parsed one is cached
    config: async () => structuredClone(await config()),
    layers,
    layerByDigest: async (d) => {
      const m = await manifest();
      const i = m.layers.findIndex((l) => l.digest === d);
      if (i !== -1) return (await layers())[i] as Layer;
      if (m.config.digest === d) return cfgLayer();
      throw new ContentError('NOT_FOUND', `image ${await digest()}: no layer ${d}`);
    },
    layerByDiffId: async (d) => layerByDiffId(img, d),
  };
  return img;
}

/**
 * The layer of `img` whose diff id is `d` (the first, when a layer repeats); ContentError NOT_FOUND
 * otherwise. Reads only the config, never layer bytes.
 */
export async function layerByDiffId(img: Pick<Image, 'config' | 'layers' | 'digest'>, d: Digest): Promise<Layer> {
  const [cfg, layers] = await Promise.all([img.config(), img.layers()]);
  const i = (cfg.rootfs?.diff_ids ?? []).indexOf(d);
  const l = i === -1 ? undefined : layers[i];
  if (!l) throw new ContentError('NOT_FOUND', `image ${await img.digest()}: no layer with diff id ${d}`);
  return l;
}

/**
 * A full ImageIndex from an index core. The manifest is parsed and validated on first use;
 * image()/index() only resolve digests the index lists (ContentError NOT_FOUND otherwise).
 */
export function fromIndexCore(core: IndexCore): ImageIndex {
  const rawManifest = lazy(() => core.rawManifest());
  const digest = lazy(async () => sha256(await rawManifest()));
  const manifest = lazy(async (): Promise<IndexManifest> => {
    const raw = await rawManifest();
    return validateIndex(parseJsonBytes(raw, `index ${sha256(raw)}`, 'INVALID_MANIFEST'));
  });
  const child = async (d: Digest): Promise<void> => {
    if (!(await manifest()).manifests.some((m) => m.digest === d)) {
      throw new ContentError('NOT_FOUND', `index ${await digest()}: no manifest ${d}`);
    }
  };
  return {
    mediaType: () => core.mediaType(),
    digest,
    size: async () => (await rawManifest()).byteLength,
    rawManifest,
    manifest,
    image: async (d) => {
      await child(d);
      return core.image(d);
    },
    index: async (d) => {
      await child(d);
      return core.index(d);
    },
  };
}
