import type { Descriptor } from './descriptor.js';
import type { MediaType } from './media-types.js';

/**
 * An image manifest, OCI or Docker schema 2 (image-spec manifest.md). Field names are the spec's.
 * https://github.com/opencontainers/image-spec/blob/main/manifest.md
 */
export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: MediaType;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * An image index or Docker manifest list (image-spec image-index.md).
 * https://github.com/opencontainers/image-spec/blob/main/image-index.md
 */
export interface IndexManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: MediaType;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Well-known annotation keys (image-spec annotations.md). */
export const Annotations = {
  RefName: 'org.opencontainers.image.ref.name',
  Created: 'org.opencontainers.image.created',
  BaseName: 'org.opencontainers.image.base.name',
  BaseDigest: 'org.opencontainers.image.base.digest',
  /** containerd's full name annotation, used in OCI archives to carry `registry/repo:tag`. */
  ContainerdImageName: 'io.containerd.image.name',
} as const;
