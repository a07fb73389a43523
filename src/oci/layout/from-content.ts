import type { ContentStore } from '../content/content-store.js';
import type { Descriptor } from '../descriptor.js';
import type { Digest } from '../digest.js';
import type { Image, ImageIndex } from '../image.js';
import type { ImageManifest, IndexManifest } from '../manifest.js';
import { isImageManifest, isIndex } from '../media-types.js';
import { fromCompressedCore, fromIndexCore, type CompressedLayerCore } from '../partial.js';
import { ContentError } from '../../util/errors.js';
import { MAX_MANIFEST_BYTES } from './graph.js';

/** Configs larger than this are refused (they are read into memory). */
export const MAX_CONFIG_BYTES = 8 << 20;

/**
 * The image whose manifest is `desc`, read lazily from `content`. Blob reads are verified
 * against the manifest's descriptors while they stream.
 */
export function imageFromContent(content: ContentStore, desc: Descriptor): Image {
  if (!isImageManifest(desc.mediaType)) {
    throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `${desc.digest}: ${desc.mediaType} is not an image manifest`);
  }
  let raw: Promise<Buffer> | undefined;
  const rawManifest = (): Promise<Buffer> => (raw ??= readManifest(content, desc));
  let parsed: Promise<ImageManifest> | undefined;
  const manifest = (): Promise<ImageManifest> =>
    (parsed ??= rawManifest().then((b) => {
      const m = JSON.parse(b.toString('utf8')) as ImageManifest;
      if (!m.config || !Array.isArray(m.layers)) throw new ContentError('INVALID_MANIFEST', `manifest ${desc.digest}: missing config or layers`);
      return m;
    }));
  return fromCompressedCore({
    mediaType: async () => desc.mediaType,
    rawManifest,
    rawConfig: async () => {
      const m = await manifest();
      if (m.config.size > MAX_CONFIG_BYTES) throw new ContentError('SIZE_MISMATCH', `config ${m.config.digest} is larger than ${MAX_CONFIG_BYTES} bytes`);
      const b = await content.read(m.config.digest, MAX_CONFIG_BYTES);
      if (b.length !== m.config.size) throw new ContentError('SIZE_MISMATCH', `config ${m.config.digest}: stored ${b.length} bytes, manifest says ${m.config.size}`);
      return b;
    },
    layerByDigest: async (d: Digest): Promise<CompressedLayerCore> => {
      const m = await manifest();
      const l = m.layers.find((x) => x.digest === d);
      if (!l) throw new ContentError('NOT_FOUND', `layer ${d} not in manifest ${desc.digest}`);
      return layerCore(content, l);
    },
  });
}

/** The index whose manifest is `desc`, read lazily from `content`. */
export function indexFromContent(content: ContentStore, desc: Descriptor): ImageIndex {
  if (!isIndex(desc.mediaType)) {
    throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `${desc.digest}: ${desc.mediaType} is not an image index`);
  }
  let raw: Promise<Buffer> | undefined;
  const rawManifest = (): Promise<Buffer> => (raw ??= readManifest(content, desc));
  const child = async (d: Digest): Promise<Descriptor> => {
    const m = JSON.parse((await rawManifest()).toString('utf8')) as IndexManifest;
    const c = m.manifests?.find((x) => x.digest === d);
    if (!c) throw new ContentError('NOT_FOUND', `manifest ${d} not in index ${desc.digest}`);
    return c;
  };
  return fromIndexCore({
    mediaType: async () => desc.mediaType,
    rawManifest,
    image: async (d) => imageFromContent(content, await child(d)),
    index: async (d) => indexFromContent(content, await child(d)),
  });
}

/** A compressed-layer core over a stored blob. */
export function layerCore(content: ContentStore, l: Descriptor): CompressedLayerCore {
  return {
    digest: async () => l.digest,
    size: async () => l.size,
    mediaType: async () => l.mediaType,
    compressed: () => content.open(l),
    descriptor: async () => l,
  };
}

async function readManifest(content: ContentStore, desc: Descriptor): Promise<Buffer> {
  if (desc.size > MAX_MANIFEST_BYTES) throw new ContentError('SIZE_MISMATCH', `manifest ${desc.digest} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const b = await content.read(desc.digest, MAX_MANIFEST_BYTES);
  if (b.length !== desc.size) throw new ContentError('SIZE_MISMATCH', `manifest ${desc.digest}: stored ${b.length} bytes, descriptor says ${desc.size}`);
  return b;
}
