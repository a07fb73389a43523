/**
 * Build operations in canonical form and their content-addressed cache keys. Only semantic
 * fields enter a key (no source locations, no history text, no host paths, no timestamps):
 * key = sha256(canonical JSON of { parent key, op, input digests }), as buildkit's cache keys
 * chain the parent's key, the op's digest and the content checksums of its inputs.
 */
import { sha256, type Digest } from '../../src/oci/digest.js';
import { canonicalJson } from '../../src/util/json.js';
import type { Platform } from '../../src/oci/platform.js';

/** Version of the key scheme: bump to invalidate every cache entry. */
export const CACHE_KEY_VERSION = 1;

/** The root filesystem a stage starts from. */
export type SourceOp =
  | { readonly kind: 'scratch'; readonly platform: string }
  | { readonly kind: 'image'; /** manifest digest of the base image */ readonly digest: Digest };

/** A RUN. */
export interface ExecOp {
  readonly kind: 'exec';
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user: string;
  readonly network: string;
  readonly inlineFiles: readonly { readonly path: string; readonly data: string; readonly mode: number }[];
  /** `RUN --mount`s (semantic fields only; bind sources enter through the key's inputs, secret values never). */
  readonly mounts?: readonly Readonly<Record<string, string | number | boolean>>[];
}

/** A COPY/ADD; the source content enters through the key's inputs. */
export interface FileCopyOp {
  readonly kind: 'copy';
  readonly instruction: 'COPY' | 'ADD';
  readonly sources: readonly string[];
  readonly contents: readonly { readonly path: string; readonly data: string }[];
  readonly dest: string;
  readonly chown: string;
  readonly chmod: string;
  readonly excludes: readonly string[];
  readonly unpack: boolean;
  /** `context`, or the key of the stage copied from, or an image digest (also in the inputs). */
  readonly from: string;
}

/** A WORKDIR creating its directory. */
export interface MkdirOp {
  readonly kind: 'mkdir';
  readonly path: string;
  readonly user: string;
}

/** Every op. */
export type Op = SourceOp | ExecOp | FileCopyOp | MkdirOp;

/** Platform as the `os/arch[/variant]` string used in keys. */
export function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** The digest of an op alone. */
export function opDigest(op: Op): Digest {
  return sha256(canonicalJson(op));
}

/** The cache key of a step: its parent's key, the op and the digests of its inputs. */
export function cacheKey(parent: Digest | undefined, op: Op, inputs: readonly Digest[] = []): Digest {
  return sha256(canonicalJson({ v: CACHE_KEY_VERSION, parent: parent ?? null, op: opDigest(op), inputs: [...inputs] }));
}
