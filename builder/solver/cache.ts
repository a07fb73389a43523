/**
 * The local build cache: one JSON record per step key under `<store root>/buildcache/`, and
 * one gc root per record under `<store root>/gc-roots/` naming its layer blob, so `prune`
 * keeps cached layers. Records and roots are written to a temp name and renamed (atomic, safe
 * under concurrent builds: two builders writing the same key write equivalent records).
 */
import { randomBytes } from 'node:crypto';
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
}

/** Step results by cache key. */
export interface BuildCache {
  /** The record for `key`, or undefined (also when its layer blob is gone). */
  get(key: Digest): Promise<CacheRecord | undefined>;
  put(key: Digest, rec: CacheRecord): Promise<void>;
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
    await atomicWrite(join(this.dir, `${hex}.json`), JSON.stringify(rec));
  }
}
