import type { Readable } from 'node:stream';
import type { Descriptor } from '../descriptor.js';
import type { Digest } from '../digest.js';

/**
 * Blobs by digest. Implementations MUST verify digest and size while writing, write to a
 * temp file, fsync and rename into place, so a crash never leaves a visible partial blob,
 * and concurrent writers of the same blob are safe.
 */
export interface ContentStore {
  has(d: Digest): Promise<boolean>;
  /** Size of a stored blob, or undefined. */
  stat(d: Digest): Promise<{ size: number } | undefined>;
  /**
   * A new stream of the blob's bytes, verified against `desc` (digest and size) while it
   * streams: the stream errors with DIGEST_MISMATCH/SIZE_MISMATCH instead of ending cleanly.
   * Throws ContentError NOT_FOUND when absent.
   */
  open(desc: Pick<Descriptor, 'digest' | 'size'> | Digest): Promise<Readable>;
  /** Whole blob in memory: for manifests and configs only (callers bound the size). */
  read(d: Digest, maxBytes?: number): Promise<Buffer>;
  /**
   * Stores a blob. When `expected` has a digest (and size), the data is verified against it and
   * nothing is stored on mismatch. Returns the descriptor of what was stored (mediaType from
   * `expected`, else application/octet-stream).
   */
  put(data: Readable | Uint8Array, expected?: Partial<Descriptor>): Promise<Descriptor>;
  delete(d: Digest): Promise<void>;
  /** Every stored digest. */
  list(): AsyncIterable<Digest>;
  /** Filesystem path of a stored blob (read-only use: e.g. handing it to a subprocess). */
  path(d: Digest): string;
}
