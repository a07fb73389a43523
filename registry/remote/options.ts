import type { Platform } from '../../src/oci/platform.js';
import type { TransportOptions } from '../transport/client.js';
import type { RegistryClient } from '../transport/client.js';

/** Options of remote operations (pull, push, remoteImage, …). Readonly; `signal` cancels. */
export interface RemoteOptions extends TransportOptions {
  /** Platform chosen from an index (default: the host's). */
  readonly platform?: Platform;
  /** Pull: store every image of an index (every platform) instead of only `platform`'s. */
  readonly allPlatforms?: boolean;
  /** Blobs transferred at once (default 4). */
  readonly concurrency?: number;
  /** Blobs larger than this are uploaded in chunks (PATCH + Content-Range); default 32 MiB. */
  readonly chunkThreshold?: number;
  /** Chunk size of chunked uploads (raised to the registry's OCI-Chunk-Min-Length); default 16 MiB. */
  readonly chunkSize?: number;
  /** Repositories on the same registry to try cross-repository blob mounts from. */
  readonly mountFrom?: readonly string[];
  /** Consecutive failed attempts without progress tolerated when resuming a transfer (default 5). */
  readonly resumeAttempts?: number;
  /**
   * Keep partial downloads here (`<dir>/<hex>.partial`) so that an interrupted pull continues
   * where it stopped on the next run (see PartialFileTarget). Without it, drops are still
   * resumed within the run, but nothing survives the process.
   */
  readonly partialDir?: string;
  /** Reuse a client (and its tokens and connections); it is not closed by the operation. */
  readonly client?: RegistryClient;
  /** Progress callback: called with a blob digest and the bytes moved so far. */
  readonly onProgress?: (e: { readonly digest: string; readonly done: number; readonly total: number; readonly skipped?: boolean; readonly mounted?: boolean }) => void;
}

/** The largest manifest accepted or pushed (distribution-spec: registries SHOULD accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 << 20;

/** The largest config blob read into memory. */
export const MAX_CONFIG_BYTES = 8 << 20;
