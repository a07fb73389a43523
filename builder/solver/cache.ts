/**
 * The local build cache: one JSON record per step key under `<store root>/buildcache/`, and
 * one gc root per record under `<store root>/gc-roots/` naming its layer blob, so `prune`
 * keeps cached layers. Records and roots are written to a temp name and renamed (atomic, safe
 * under concurrent builds: two builders writing the same key write equivalent records).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestHex, type Digest } from '../../src/oci/digest.js';

/** What a cached step produced. */
export interface CacheRecord {
  /** The step's layer; absent when the step changed nothing. */
  readonly layer?: { readonly descriptor: Descriptor; readonly diffId: Digest };
  /** When the step first ran (RFC 3339); history times of cached steps. */
  readonly created: string;
  /**
   * Makes the layer blob present (and verified) in the content store; the solver calls it before
   * the layer's bytes are first read. Set on records of a remote cache, whose blobs are pulled
   * only when needed (a later step runs on top, or the image is stored). Never persisted.
   */
  readonly fetch?: (signal?: AbortSignal) => Promise<void>;
}

/** A step result a build used (found in the cache or just made), and where in the build. */
export interface CacheUse {
  /** The record's key (what `get`/`put` were called with). */
  readonly key: Digest;
  /** The chain key of the filesystem the step ran on (the previous step's or the base's). */
  readonly parent: Digest;
  readonly record: CacheRecord;
  /** Index of the stage the step belongs to. */
  readonly stage: number;
  /** True when the stage's layers end up in the image (the target and the stages it is built FROM). */
  readonly inImage: boolean;
}

/** Step results by cache key. */
export interface BuildCache {
  /** The record for `key`, or undefined (also when its layer blob is gone). */
  get(key: Digest): Promise<CacheRecord | undefined>;
  put(key: Digest, rec: CacheRecord): Promise<void>;
  /** Told of every step result the build used, in step order per stage (for cache export). MUST NOT throw. */
  used?(u: CacheUse): void;
}

/** Directory of the cache records under the store root. */
export const BUILD_CACHE_DIR = 'buildcache';
/** Directory of gc roots under the store root (see ImageStore). */
const GC_ROOTS = 'gc-roots';

async function atomicWrite(path: string, data: string): Promise<void> {
  const dir = join(path, '..');
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  await writeFile(tmp, data);
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** {@link BuildCache} in files under a store root. */
export class FileBuildCache implements BuildCache {
  readonly dir: string;
  private readonly rootsDir: string;

  constructor(storeRoot: string, private readonly content: ContentStore) {
    this.dir = join(storeRoot, BUILD_CACHE_DIR);
    this.rootsDir = join(storeRoot, GC_ROOTS);
  }

  async get(key: Digest): Promise<CacheRecord | undefined> {
    let rec: CacheRecord;
    try {
      rec = JSON.parse(await readFile(join(this.dir, `${digestHex(key)}.json`), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
    if (typeof rec.created !== 'string') return undefined;
    if (rec.layer && !(await this.content.has(rec.layer.descriptor.digest))) return undefined;
    return rec;
  }

  async put(key: Digest, rec: CacheRecord): Promise<void> {
    const hex = digestHex(key);
    await mkdir(this.dir, { recursive: true });
    if (rec.layer) {
      // the gc root first: a record never names a blob gc may take
      await mkdir(this.rootsDir, { recursive: true });
      await atomicWrite(join(this.rootsDir, `buildcache-${hex}`), `# build cache ${key}\n${rec.layer.descriptor.digest}\n`);
    }
    const stored: CacheRecord = { ...(rec.layer ? { layer: rec.layer } : {}), created: rec.created };
    await atomicWrite(join(this.dir, `${hex}.json`), JSON.stringify(stored));
  }
}

/** What made one step's key: kept per step position so a later miss can say what changed. */
export interface StepTrailEntry {
  readonly key: Digest;
  readonly parent: Digest | null;
  readonly op: unknown;
  readonly inputs: readonly Digest[];
}

/**
 * The last key of each step position (Dockerfile, stage, step index) under
 * `<store root>/buildcache/trail/`, for `--debug-cache`.
 */
export class StepTrail {
  private readonly dir: string;
  constructor(storeRoot: string) {
    this.dir = join(storeRoot, BUILD_CACHE_DIR, 'trail');
  }

  private path(identity: string): string {
    return join(this.dir, `${createHash('sha256').update(identity).digest('hex')}.json`);
  }

  async last(identity: string): Promise<StepTrailEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.path(identity), 'utf8')) as StepTrailEntry;
    } catch {
      return undefined;
    }
  }

  async record(identity: string, e: StepTrailEntry, previous?: StepTrailEntry): Promise<void> {
    if (previous?.key === e.key) return;
    await mkdir(this.dir, { recursive: true });
    await atomicWrite(this.path(identity), JSON.stringify(e));
  }
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

/** Why `now` differs from `before` (the same step position in an earlier build), in words. */
export function explainMiss(before: StepTrailEntry | undefined, now: StepTrailEntry, parentMissed: boolean): string {
  if (!before) return 'no earlier build of this step';
  if (before.key === now.key) return 'same key as before, but the cache entry is gone (pruned, or --no-cache)';
  const why: string[] = [];
  if (before.parent !== now.parent) why.push(parentMissed ? 'an earlier step changed' : `the base changed (${short(before.parent)} -> ${short(now.parent)})`);
  const a = (before.op ?? {}) as Record<string, unknown>;
  const b = (now.op ?? {}) as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) why.push(`${k}: ${short(a[k])} -> ${short(b[k])}`);
  }
  if (JSON.stringify(before.inputs) !== JSON.stringify(now.inputs)) why.push(`input content changed: ${before.inputs.map((d) => d.slice(7, 19)).join(',') || '-'} -> ${now.inputs.map((d) => d.slice(7, 19)).join(',') || '-'}`);
  return why.join('; ') || 'unknown';
}
