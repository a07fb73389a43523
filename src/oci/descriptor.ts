import type { Digest } from './digest.js';
import type { MediaType } from './media-types.js';
import type { Platform } from './platform.js';

/**
 * A content descriptor (image-spec descriptor.md). Field names are the spec's.
 * https://github.com/opencontainers/image-spec/blob/main/descriptor.md
 */
export interface Descriptor {
  readonly mediaType: MediaType;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly data?: string;
  readonly platform?: Platform;
  readonly artifactType?: string;
}
