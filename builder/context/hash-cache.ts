/**
 * A persistent cache of context file content hashes, keyed by what lstat says about the file
 * (device, inode, size, mtime and ctime in nanoseconds), like BuildKit's contenthash and git's
 * index: a file whose metadata is unchanged is not read again. Touching a file (new mtime and
 * ctime, same content) only costs one re-read; its content hash, and so the cache key of the
 * COPY, stays the same. Files changed within the last seconds before they were examined are
 * not cached ("racy" entries: a second write in the same timestamp tick could keep size and
 * times), so they are always re-read.
 *
 * One JSON file per context directory; concurrent builds may overwrite each other's additions
 * (it is only a cache). Unreadable or malformed files count as empty.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Entries kept per context; the oldest additions go first. */
const MAX_ENTRIES = 100_000;
/** Files whose ctime or mtime is this close to the time they were examined are not cached. */
const RACY_NS = 2_000_000_000n;

/** The cache key of a file's lstat, or undefined when the file changed too recently to be cached. */
export function statCacheKey(st: BigIntStats, nowMs: number = Date.now()): string | undefined {
  const recent = BigInt(nowMs) * 1_000_000n - RACY_NS;
  if (st.mtimeNs >= recent || st.ctimeNs >= recent) return undefined;
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Content hashes (hex sha256) by {@link statCacheKey}. */
export class ContentHashCache {
  private dirty = false;

  private constructor(
    private readonly file: string,
    private readonly entries: Map<string, string>,
  ) {}

  /** Opens the cache of the context at `contextRoot`, kept in directory `dir` (created on save). */
  static async open(dir: string, contextRoot: string): Promise<ContentHashCache> {
    const file = join(dir, `${createHash('sha256').update(contextRoot).digest('hex')}.json`);
    const entries = new Map<string, string>();
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as { version?: number; entries?: [string, string][] };
      if (data.version === 1 && Array.isArray(data.entries)) {
        for (const e of data.entries) if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string' && /^[a-f0-9]{64}$/.test(e[1])) entries.set(e[0], e[1]);
      }
    } catch {
      /* no cache yet, or unreadable: start empty */
    }
    return new ContentHashCache(file, entries);
  }

  get(key: string): string | undefined {
    return this.entries.get(key);
  }

  set(key: string, hex: string): void {
    if (this.entries.get(key) === hex) return;
    this.entries.set(key, hex);
    this.dirty = true;
  }

  /** Writes the cache when something was added (temp file + rename). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const all = [...this.entries];
    const kept = all.length > MAX_ENTRIES ? all.slice(all.length - MAX_ENTRIES) : all;
    const dir = join(this.file, '..');
    await mkdir(dir, { recursive: true });
    const tmp = `${this.file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, JSON.stringify({ version: 1, entries: kept }));
      await rename(tmp, this.file);
      this.dirty = false;
    } finally {
      await rm(tmp, { force: true });
    }
  }
}
