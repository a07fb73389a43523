/**
 * What the builder needs from the outside world, as interfaces it owns: the CLI (the
 * composition root) implements them with the runtime and the image store. buildkit injects
 * its worker and meta-resolver the same way.
 */
import type { Image } from '../../src/oci/image.js';
import type { Platform } from '../../src/oci/platform.js';

/** Finds a base image (`FROM busybox`, `COPY --from=alpine`) for a platform. */
export interface ImageResolver {
  /** MUST return the image for `ref` (as written, after ARG expansion) or throw a TsbuildError naming it. */
  resolve(ref: string, platform: Platform, signal?: AbortSignal): Promise<Image>;
}

/**
 * A writable, mounted root filesystem over an image's layers: an overlay whose `upper` holds
 * every change (whiteouts in overlay form). The builder turns `upper` into the step's layer.
 */
export interface ActiveSnapshot {
  /** The mounted root (merged view). */
  readonly rootfs: string;
  /** The overlay upper directory. */
  readonly upper: string;
  /** Unmounts and removes everything `prepare` made. Idempotent; MUST be called. */
  release(): Promise<void>;
  /**
   * Optional: the upper directory was just committed, unfiltered, as the layer with this
   * diffId. The snapshotter may keep it as that layer's unpacked snapshot (the next step
   * then mounts it instead of unpacking the layer again). Called at most once, before
   * `release`; the snapshot MUST NOT be written after it.
   */
  keepAsLayer?(diffId: string): Promise<void>;
}

/** Makes {@link ActiveSnapshot}s. */
export interface Snapshotter {
  /** Mounts a writable root over `image`'s layers (none: an empty root). */
  prepare(image: Image, signal?: AbortSignal): Promise<ActiveSnapshot>;
}

/** One RUN, with everything resolved. */
export interface ExecRequest {
  readonly args: readonly string[];
  /** `KEY=value`, the complete process environment. */
  readonly env: readonly string[];
  /** Absolute; created when missing. */
  readonly cwd: string;
  /** `user[:group]` (names resolved in the root's /etc/passwd and /etc/group), '' for root. */
  readonly user: string;
  readonly network: 'host' | 'none';
  /** Read-only files made for the process only (heredoc shebang scripts under /dev/pipes/). */
  readonly inlineFiles: readonly { readonly path: string; readonly data: string; readonly mode: number }[];
  /** `RUN --mount`s, resolved to host paths; never part of the layer. */
  readonly mounts?: readonly ExecMount[];
}

/**
 * A `RUN --mount` as the executor sees it: a host directory or file bound in, a tmpfs, or a
 * secret file whose bytes MUST only ever be kept in memory (never on disk, never in a layer).
 */
export type ExecMount =
  | { readonly type: 'bind'; readonly source: string; readonly destination: string; readonly readonly: boolean }
  | { readonly type: 'tmpfs'; readonly destination: string; readonly size?: number }
  | { readonly type: 'secret'; readonly data: Buffer; readonly destination: string; readonly mode: number; readonly uid: number; readonly gid: number };

/** Where a process's output goes, as it arrives. */
export interface ProcessIO {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
}

/** How a RUN ended. */
export interface ExecResult {
  /** Exit code; 128+N when killed by signal N. */
  readonly exitCode: number;
  readonly signal?: string;
  /**
   * Paths (absolute in the container) that the runtime itself created in the root for the
   * process and that did not exist before (mount points, /etc/hosts …): the builder keeps them
   * out of the layer unless the process put something else there.
   */
  readonly runtimePaths: readonly string[];
}

/** Runs a process in an {@link ActiveSnapshot}. */
export interface Executor {
  /** MUST leave no process, mount or cgroup behind when it settles (also on abort). */
  run(snapshot: ActiveSnapshot, req: ExecRequest, io: ProcessIO, signal?: AbortSignal): Promise<ExecResult>;
  /**
   * Why RUN steps of `platform` cannot execute here (e.g. a foreign architecture without an
   * emulator), or undefined when they can. Absent: every platform is assumed runnable.
   */
  cannotRun?(platform: Platform): string | undefined;
}
