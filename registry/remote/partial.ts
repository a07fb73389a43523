import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rm, stat, truncate } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestHex } from '../../src/oci/digest.js';

/**
 * A download target that outlives the process: bytes already received by an earlier,
 * interrupted run are kept, and the download continues from {@link offset} with a Range
 * request. Call order: `append()` (any number of times), then exactly one of `commit()`
 * (verify and move into the store), `keep()` (leave for a later run) or `discard()`.
 */
export interface ResumableWriter {
  /** Bytes already held. */
  readonly offset: number;
  /** Appends a stream of the bytes that follow `offset` (advances `offset` by what was written, even on error). */
  append(data: AsyncIterable<Buffer>): Promise<void>;
  /**
   * Passes `data` through while also appending it to the partial file, for a consumer that
   * writes the blob into the store itself (one verifying pass instead of file-then-store). The
   * file is flushed when the returned iterable ends or fails, so that `keep()` after a failure
   * leaves every byte received for the next run. Then call `keep()` or `discard()`.
   */
  tee(data: AsyncIterable<Buffer>): AsyncIterable<Buffer>;
  /** Verifies the whole blob against its descriptor while moving it into the store; removes the partial file. */
  commit(): Promise<Descriptor>;
  /**
   * Appends `data` (the bytes after `offset`) and moves the verified blob into the store in the
   * same pass, the partial file itself becoming the stored blob (written once, hashed once);
   * present only when the store can adopt a file ({@link AdoptingStore}). On success the writer
   * is done; on failure `offset` tells what the file holds: call `keep()` or `discard()`.
   */
  finish?(data: AsyncIterable<Buffer>): Promise<Descriptor>;
  /** Leaves the partial file for a later resume and releases the lock. */
  keep(): Promise<void>;
  /** Removes the partial file and releases the lock. */
  discard(): Promise<void>;
}

/** A store that can take a finished partial file as a blob (FileContentStore). */
export interface AdoptingStore {
  putResumable(path: string, from: number, data: AsyncIterable<Buffer>, expected: Descriptor): Promise<{ descriptor: Descriptor }>;
}

function adopting(store: ContentStore): store is ContentStore & AdoptingStore {
  return typeof (store as Partial<AdoptingStore>).putResumable === 'function';
}

/** Opens resumable writers for blobs; undefined when the blob is being downloaded by another process. */
export interface ResumableTarget {
  open(desc: Descriptor): Promise<ResumableWriter | undefined>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Partial downloads as files `<dir>/<hex>.partial`, each guarded by `<hex>.lock` (holding the
 * owner's pid; a lock of a dead process is taken over). `commit()` streams the file into the
 * {@link ContentStore}, which verifies digest and size and stores nothing on mismatch. The CLI
 * uses `<store root>/tmp/partial`.
 *
 * With a store that can adopt a file ({@link AdoptingStore}: the CLI's FileContentStore, whose
 * root holds the partial dir), `finish()` writes the download into the partial file only and
 * renames it into the store once verified; other stores get `tee()`/`commit()` (one extra copy).
 */
export class PartialFileTarget implements ResumableTarget {
  readonly dir: string;
  readonly #store: ContentStore;

  constructor(dir: string, store: ContentStore) {
    this.dir = dir;
    this.#store = store;
  }

  async open(desc: Descriptor): Promise<ResumableWriter | undefined> {
    await mkdir(this.dir, { recursive: true });
    const hex = digestHex(desc.digest);
    const path = join(this.dir, `${hex}.partial`);
    const lock = join(this.dir, `${hex}.lock`);
    if (!(await this.#lock(lock))) return undefined;
    let offset = 0;
    try {
      offset = (await stat(path)).size;
    } catch {
      offset = 0;
    }
    if (offset > desc.size) {
      await truncate(path, 0);
      offset = 0;
    }
    const release = (): Promise<void> => rm(lock, { force: true });
    const store = this.#store;
    const w: ResumableWriter = {
      get offset() {
        return offset;
      },
      async append(data) {
        const out = createWriteStream(path, { flags: 'a' });
        const counted = async function* (): AsyncGenerator<Buffer> {
          for await (const c of data) {
            offset += c.length;
            yield c;
          }
        };
        try {
          await pipeline(Readable.from(counted()), out);
        } finally {
          offset = (await stat(path).catch(() => ({ size: 0 }))).size;
        }
      },
      async *tee(data) {
        // a deep buffer: the copy must not hold up the download and the store's write
        const out = createWriteStream(path, { flags: 'a', highWaterMark: 4 << 20 });
        const failed = new Promise<never>((_, reject) => out.once('error', reject));
        failed.catch(() => undefined);
        try {
          for await (const c of data) {
            if (!out.write(c)) await Promise.race([once(out, 'drain'), failed]);
            offset += c.length;
            yield c;
          }
        } finally {
          out.end();
          await Promise.race([once(out, 'finish'), failed]).catch(() => undefined);
          offset = (await stat(path).catch(() => ({ size: 0 }))).size;
        }
      },
      ...(adopting(store)
        ? {
            async finish(data: AsyncIterable<Buffer>): Promise<Descriptor> {
              try {
                const { descriptor } = await store.putResumable(path, offset, data, desc);
                await release();
                return descriptor;
              } finally {
                offset = (await stat(path).catch(() => ({ size: 0 }))).size;
              }
            },
          }
        : {}),
      async commit() {
        try {
          return await store.put(createReadStream(path), { mediaType: desc.mediaType, digest: desc.digest, size: desc.size });
        } finally {
          await rm(path, { force: true });
          await release();
        }
      },
      async keep() {
        await release();
      },
      async discard() {
        await rm(path, { force: true });
        await release();
      },
    };
    return w;
  }

  async #lock(lock: string): Promise<boolean> {
    for (let i = 0; i < 2; i++) {
      try {
        const fh = await open(lock, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
        if (pid && pid !== process.pid && alive(pid)) return false;
        if (pid === process.pid) return false;
        await rm(lock, { force: true });
      }
    }
    return false;
  }
}
