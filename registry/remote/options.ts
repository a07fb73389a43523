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
  /** Blobs larger than this are uploaded in chunks (PATCH + Content-Range); default 64 MiB. */
  readonly chunkThreshold?: number;
  /** Chunk size of chunked uploads (raised to the registry's OCI-Chunk-Min-Length); default 64 MiB. */
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
  /** Progress callback, per blob (see {@link TransferProgress}). It must not throw. */
  readonly onProgress?: (e: TransferProgress) => void;
}

/**
 * One step of a blob transfer, reported to `onProgress`. Per blob: `start` once when bytes
 * begin to move (`done` > 0 when an earlier download is continued), `progress` as chunks
 * arrive or leave (once per chunk: the receiver throttles), and `done` once at the end with
 * `done === total`. A blob that need not move gets only `done`, with `skipped` (already
 * present) or `mounted` (cross-repository mount). A blob whose transfer fails gets no `done`.
 */
export interface TransferProgress {
  readonly digest: string;
  readonly state: 'start' | 'progress' | 'done';
  /** Bytes moved so far. */
  readonly done: number;
  readonly total: number;
  readonly skipped?: boolean;
  readonly mounted?: boolean;
}

/** The largest manifest accepted or pushed (distribution-spec: registries SHOULD accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 << 20;

/** The largest config blob read into memory. */
export const MAX_CONFIG_BYTES = 8 << 20;
