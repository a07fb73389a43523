/**
 * Build cache eviction (`tsbuild builder prune`, like `docker builder prune`): removes step
 * records (`<root>/buildcache/<hex>.json` and their gc roots) and cache mount directories
 * (`<root>/buildcache/mounts/<hex>/`), then lets the store's gc delete the layer blobs nothing
 * else refers to.
 *
 * Last use: a record's file mtime is touched on every cache hit ({@link LastUsedBuildCache}),
 * a cache mount directory's when a RUN acquires it (DirCacheMounts). Concurrent builds are safe:
 * - an entry used since the oldest live store lease began (a build in progress holds one) is
 *   kept;
 * - an entry is first renamed away (so a build looking it up misses it and reruns the step),
 *   then its mtime is checked again: one touched meanwhile is put back instead of removed;
 * - the store's gc spares blobs written since the oldest live lease began.
 */
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestHex, type Digest } from '../../src/oci/digest.js';
import { walkGraph } from '../../src/oci/layout/graph.js';
import type { ImageStore } from '../../src/oci/store/image-store.js';
import { BUILD_CACHE_DIR, FileBuildCache, type CacheRecord } from './cache.js';

/**
 * The local build cache, recording last use: a hit touches the record's file first (a record
 * that is being pruned is then already gone, and the step misses).
 */
export class LastUsedBuildCache extends FileBuildCache {
  override async get(key: Digest): Promise<CacheRecord | undefined> {
    const now = new Date();
    try {
      await utimes(join(this.dir, `${digestHex(key)}.json`), now, now);
    } catch {
      return undefined;
    }
    return super.get(key);
  }
}

/** Options of {@link pruneBuildCache}. */
export interface BuildCachePruneOptions {
  /** Also remove step records whose layers are in local images, and the `--debug-cache` trail. */
  readonly all?: boolean;
  /** Only remove entries last used longer ago than this many milliseconds (`--filter until=`). */
  readonly untilMs?: number;
  /** Keep this many bytes of cache: remove the least recently used entries only while above it. */
  readonly keepBytes?: number;
  readonly dryRun?: boolean;
  /** Clock (tests). */
  readonly now?: () => number;
}

/** One removed (or, with dryRun, removable) cache entry. */
export interface PrunedEntry {
  /** The step key's hex, or `mount:<hex>` for a cache mount. */
  readonly id: string;
  readonly kind: 'step' | 'cache-mount';
  /** Bytes it held that nothing else holds (a step's layer blob when no image has it; a mount's files). */
  readonly size: number;
  readonly lastUsed: Date;
}

interface Entry extends PrunedEntry {
  readonly path: string;
  readonly layer?: Digest;
}

async function duBytes(dir: string): Promise<number> {
  let n = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      n += st.isFile() ? st.size : 0;
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return n;
}

/** When the oldest live writer lease of the store began (ms), or undefined. */
async function oldestLiveLease(storeRoot: string): Promise<number | undefined> {
  const dir = join(storeRoot, 'leases');
  let oldest: number | undefined;
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    let v: { pid?: number; started?: number };
    try {
      v = JSON.parse(await readFile(join(dir, n), 'utf8')) as typeof v;
    } catch {
      oldest = Math.min(oldest ?? Date.now(), Date.now()); // being written: live from now
      continue;
    }
    if (typeof v.pid !== 'number' || typeof v.started !== 'number') continue;
    try {
      process.kill(v.pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') continue;
    }
    oldest = Math.min(oldest ?? v.started, v.started);
  }
  return oldest;
}

/**
 * Renames `path` away, re-checks its mtime, and removes it unless it was used at or after
 * `since` (then it is put back). Returns whether it was removed.
 */
async function removeUnlessTouched(path: string, since: number): Promise<boolean> {
  const aside = join(path, '..', `.pruning-${randomBytes(6).toString('hex')}`);
  try {
    await rename(path, aside);
  } catch {
    return false; // gone already (another prune)
  }
  const st = await stat(aside).catch(() => undefined);
  if (st && st.mtimeMs >= since) {
    // used while we looked: put it back unless a build wrote a fresh one meanwhile
    if (!(await stat(path).catch(() => undefined))) await rename(aside, path).catch(() => rm(aside, { recursive: true, force: true }));
    else await rm(aside, { recursive: true, force: true });
    return false;
  }
  await rm(aside, { recursive: true, force: true });
  return true;
}

/**
 * Removes build cache entries (least recently used first) as `opts` ask, then the blobs only
 * they kept through `store.gc`. Returns what was removed and the bytes reclaimed.
 */
export async function pruneBuildCache(storeRoot: string, store: ImageStore, opts: BuildCachePruneOptions = {}): Promise<{ removed: PrunedEntry[]; reclaimed: number }> {
  const now = opts.now ?? Date.now;
  const started = now();
  const cacheDir = join(storeRoot, BUILD_CACHE_DIR);
  const rootsDir = join(storeRoot, 'gc-roots');

  // blobs of local images: a step record whose layer is one of them frees nothing when removed
  const inImages = new Set<string>();
  for (const r of await store.list()) await walkGraph(store.content, r.descriptor, () => {}, { seen: inImages, onMissing: () => {} });

  const entries: Entry[] = [];
  for (const n of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
    const path = join(cacheDir, n);
    const st = await stat(path).catch(() => undefined);
    if (!st) continue;
    let rec: CacheRecord | undefined;
    try {
      rec = JSON.parse(await readFile(path, 'utf8')) as CacheRecord;
    } catch {
      rec = undefined; // unreadable: removable
    }
    const layer = rec?.layer?.descriptor as Descriptor | undefined;
    const shared = !!layer && inImages.has(layer.digest);
    if (shared && !opts.all) continue;
    entries.push({ id: n.slice(0, 64), kind: 'step', path, size: layer && !shared ? layer.size : 0, lastUsed: st.mtime, ...(layer ? { layer: layer.digest } : {}) });
  }
  const mountsDir = join(cacheDir, 'mounts');
  for (const n of await readdir(mountsDir).catch(() => [] as string[])) {
    if (!/^([0-9a-f]{64}|private-[0-9a-f]+-[0-9a-f]+)$/.test(n)) continue;
    const path = join(mountsDir, n);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    entries.push({ id: `mount:${n}`, kind: 'cache-mount', path, size: await duBytes(path), lastUsed: st.mtime });
  }

  // in use by a running build (used since the oldest live lease began): kept
  const lease = await oldestLiveLease(storeRoot);
  const inUseSince = Math.min(lease ?? started, started);
  let candidates = entries.filter((e) => e.lastUsed.getTime() < inUseSince);
  if (opts.untilMs !== undefined) candidates = candidates.filter((e) => e.lastUsed.getTime() < started - opts.untilMs!);
  candidates.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
  if (opts.keepBytes !== undefined) {
    let total = entries.reduce((s, e) => s + e.size, 0);
    const chosen: Entry[] = [];
    for (const e of candidates) {
      if (total <= opts.keepBytes) break;
      chosen.push(e);
      total -= e.size;
    }
    candidates = chosen;
  }

  const removed: PrunedEntry[] = [];
  const layers = new Set<string>();
  let mountBytes = 0;
  for (const e of candidates) {
    if (opts.dryRun) {
      removed.push({ id: e.id, kind: e.kind, size: e.size, lastUsed: e.lastUsed });
      continue;
    }
    if (!(await removeUnlessTouched(e.path, inUseSince))) continue;
    if (e.kind === 'step') {
      const root = join(rootsDir, `buildcache-${e.id}`);
      await rm(root, { force: true });
      // a build that re-made the step meanwhile wrote a new record: give it its root back
      const again = await readFile(e.path, 'utf8').then((t) => JSON.parse(t) as CacheRecord).catch(() => undefined);
      if (again?.layer) await writeFile(root, `# build cache sha256:${e.id}\n${again.layer.descriptor.digest}\n`).catch(() => undefined);
      if (e.layer) layers.add(e.layer);
    } else mountBytes += e.size;
    removed.push({ id: e.id, kind: e.kind, size: e.size, lastUsed: e.lastUsed });
  }
  if (opts.all && !opts.dryRun && lease === undefined) {
    await rm(join(cacheDir, 'trail'), { recursive: true, force: true });
    // the context file-hash cache (builder/context/hash-cache.ts): only a cache, rebuilt on demand
    await rm(join(cacheDir, 'context-hashes'), { recursive: true, force: true });
  }
  let blobBytes = 0;
  if (opts.dryRun) blobBytes = removed.filter((e) => e.kind === 'step').reduce((s, e) => s + e.size, 0);
  else if (layers.size) blobBytes = (await store.gc({ only: layers })).bytes;
  return { removed, reclaimed: blobBytes + (opts.dryRun ? removed.filter((e) => e.kind === 'cache-mount').reduce((s, e) => s + e.size, 0) : mountBytes) };
}
