import type { Readable } from 'node:stream';
import type { ImageConfig } from './config.js';
import type { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import type { ImageManifest, IndexManifest } from './manifest.js';
import type { MediaType } from './media-types.js';

/**
 * A filesystem layer (ggcr v1.Layer). Accessors are lazy and cache their promise.
 * Each call to compressed()/uncompressed() returns a NEW stream owned by the caller,
 * who MUST consume or destroy it.
 */
export interface Layer {
  /** Digest of the blob as stored/transferred (compressed). */
  digest(): Promise<Digest>;
  /** Digest of the uncompressed tar (config rootfs.diff_ids). */
  diffId(): Promise<Digest>;
  /** Size in bytes of the compressed blob. */
  size(): Promise<number>;
  mediaType(): Promise<MediaType>;
  /** The blob bytes as stored. Implementations verify digest and size while streaming. */
  compressed(): Promise<Readable>;
  /** The tar bytes. */
  uncompressed(): Promise<Readable>;
  /** Descriptor of the blob (mediaType, digest, size, annotations). */
  descriptor(): Promise<Descriptor>;
}

/** A single-platform image (ggcr v1.Image). Accessor-only; mutation returns new lazy wrappers. */
export interface Image {
  mediaType(): Promise<MediaType>;
  /** Digest of rawManifest(). */
  digest(): Promise<Digest>;
  size(): Promise<number>;
  /** The manifest bytes exactly as stored or transferred; digest() is their sha256. */
  rawManifest(): Promise<Uint8Array>;
  manifest(): Promise<ImageManifest>;
  configName(): Promise<Digest>;
  rawConfig(): Promise<Uint8Array>;
  config(): Promise<ImageConfig>;
  /** Layers in manifest order (bottom first). */
  layers(): Promise<readonly Layer[]>;
  layerByDigest(d: Digest): Promise<Layer>;
  layerByDiffId(d: Digest): Promise<Layer>;
}

/** An image index / manifest list (ggcr v1.ImageIndex). */
export interface ImageIndex {
  mediaType(): Promise<MediaType>;
  digest(): Promise<Digest>;
  size(): Promise<number>;
  rawManifest(): Promise<Uint8Array>;
  manifest(): Promise<IndexManifest>;
  /** The child image with manifest digest `d`. */
  image(d: Digest): Promise<Image>;
  /** The child index with digest `d`. */
  index(d: Digest): Promise<ImageIndex>;
}
