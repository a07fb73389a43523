import { read as fsRead, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { ContentError } from '../../util/errors.js';
import type { TarEntry } from './entry.js';
import { BLOCK, encodeHeader, padding, paxRecordsFor, typeflagOf } from './header.js';

/** Output is coalesced into chunks of this size: downstream compressors work far better on big chunks. */
const CHUNK = 1 << 20;
/** Bytes the output stream may buffer before `add` waits for the consumer. */
const HIGH_WATER = 4 * CHUNK;

/** Options of {@link TarWriter}. */
export interface TarWriterOptions {
  /** Clamp every mtime to at most this value (seconds; reproducible builds, SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
}

/**
 * A streaming, deterministic tar encoder (POSIX pax: ustar headers plus PAX records where ustar
 * cannot hold a value: long or non-ASCII paths and link names, uid/gid > 2097151, sizes ≥ 8 GiB,
 * fractional or negative mtimes, xattrs as byte-exact `SCHILY.xattr.<name>`). uname/gname are
 * always empty; no atime/ctime is written.
 *
 * Contract: call {@link add} for each entry (calls are serialised; awaiting each is not required
 * but bounds memory), then {@link finish} once. Read {@link stream}; `add` waits while the
 * consumer is behind (backpressure). If the consumer destroys the stream, pending and later
 * `add` calls reject. The writer never closes a body stream it was given except by reading it
 * to its end.
 */
export class TarWriter {
  /** The tar bytes, in chunks of about 1 MiB. */
  readonly stream: Readable;
  readonly #sde: number | undefined;
  #buf: Buffer = Buffer.allocUnsafe(CHUNK);
  #len = 0;
  #drain: (() => void) | undefined;
  #closed: Error | undefined;
  #chain: Promise<void> = Promise.resolve();
  #finished = false;

  constructor(opts?: TarWriterOptions) {
    this.#sde = opts?.sourceDateEpoch;
    this.stream = new Readable({
      highWaterMark: HIGH_WATER,
      read: () => {
        const d = this.#drain;
        this.#drain = undefined;
        d?.();
      },
      destroy: (err, cb) => {
        this.#closed = err ?? new ContentError('IO', 'tar output stream was closed by its consumer');
        const d = this.#drain;
        this.#drain = undefined;
        d?.();
        cb(err);
      },
    });
  }

  /**
   * Appends one entry. For regular files, `body` must supply exactly `e.size` bytes (a Buffer
   * or a Readable that the writer reads to its end); other types take no body.
   */
  add(e: TarEntry, body?: Readable | Buffer): Promise<void> {
    return this.#enqueue(() => this.#add(e, body), true);
  }

  /**
   * Appends a regular file whose body is read from the open file descriptor `fd` (from offset 0,
   * `e.size` bytes) straight into the output buffer. If the file shrank meanwhile, the rest is
   * zero-filled so the archive stays well-formed (GNU tar does the same). Does not close `fd`.
   * With `sync`, reads use readSync on the calling thread: for small, cached files this avoids
   * thread-pool round trips that cost far more than the read itself.
   */
  addFromFd(e: TarEntry, fd: number, sync = false): Promise<void> {
    return this.#enqueue(async () => {
      await this.#header(e);
      await this.#bodyFromFd(fd, e.size, sync);
      await this.#zeros(padding(e.size));
    }, true);
  }

  /** Writes the end-of-archive marker (two zero blocks) and ends {@link stream}. */
  finish(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#finished) return;
      this.#finished = true;
      await this.#zeros(2 * BLOCK);
      this.#flush();
      this.stream.push(null);
    }, false);
  }

  /** Ends the output with an error (used by producers that fail midway). */
  abort(err: Error): void {
    this.stream.destroy(err);
  }

  #enqueue(fn: () => Promise<void>, isAdd: boolean): Promise<void> {
    const p = this.#chain.then(() => {
      if (this.#closed) throw this.#closed;
      if (this.#finished && isAdd) throw new ContentError('IO', 'tar writer already finished');
      return fn();
    });
    this.#chain = p.catch(() => {});
    return p;
  }

  async #add(e: TarEntry, body?: Readable | Buffer): Promise<void> {
    if (e.type !== 'file') {
      if (body instanceof Readable) body.resume();
      await this.#header(e);
      return;
    }
    await this.#header(e);
    if (body === undefined) {
      if (e.size !== 0) throw new ContentError('INVALID_TAR', `tar entry ${e.path}: no body for ${e.size} bytes`);
    } else if (Buffer.isBuffer(body)) {
      if (body.length !== e.size) {
        throw new ContentError('INVALID_TAR', `tar entry ${e.path}: body has ${body.length} bytes, header says ${e.size}`);
      }
      await this.#write(body);
    } else {
      let n = 0;
      for await (const c of body as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > e.size) {
          body.destroy();
          throw new ContentError('INVALID_TAR', `tar entry ${e.path}: body is longer than ${e.size} bytes`);
        }
        await this.#write(c);
      }
      if (n !== e.size) throw new ContentError('INVALID_TAR', `tar entry ${e.path}: body has ${n} bytes, header says ${e.size}`);
    }
    await this.#zeros(padding(e.size));
  }

  async #header(e: TarEntry): Promise<void> {
    if (e.type !== 'file' && e.size !== 0 && e.type !== 'hardlink') {
      throw new ContentError('INVALID_TAR', `tar entry ${e.path}: a ${e.type} has no body`);
    }
    if (!Number.isFinite(e.mtime) || !Number.isSafeInteger(e.size) || e.size < 0 || e.uid < 0 || e.gid < 0) {
      throw new ContentError('INVALID_TAR', `tar entry ${e.path}: invalid numeric field`);
    }
    let path = e.path;
    if (e.type === 'dir' && !path.endsWith('/')) path += '/';
    const mtime = this.#sde !== undefined && e.mtime > this.#sde ? this.#sde : e.mtime;
    const size = e.type === 'file' ? e.size : 0;
    const recs = paxRecordsFor({ ...e, size }, path, mtime);
    if (recs.length > 0) {
      const pax = Buffer.concat(recs);
      const slash = path.lastIndexOf('/', path.length - 2);
      const base = path.slice(slash + 1).replace(/\/$/, '');
      const dir = slash >= 0 ? path.slice(0, slash + 1) : '';
      await this.#ensure(BLOCK);
      encodeHeader(
        { path: `${dir}PaxHeaders.0/${base}`, typeflag: 0x78, mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: 0 },
        this.#buf,
        this.#len,
      );
      this.#len += BLOCK;
      await this.#write(pax);
      await this.#zeros(padding(pax.length));
    }
    await this.#ensure(BLOCK);
    encodeHeader(
      {
        path,
        typeflag: typeflagOf(e.type),
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size,
        mtime,
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
        devmajor: e.type === 'char' || e.type === 'block' ? (e.devmajor ?? 0) : 0,
        devminor: e.type === 'char' || e.type === 'block' ? (e.devminor ?? 0) : 0,
      },
      this.#buf,
      this.#len,
    );
    this.#len += BLOCK;
  }

  /** Makes room for `n` (≤ CHUNK) contiguous bytes in the current chunk. */
  async #ensure(n: number): Promise<void> {
    if (this.#len + n > CHUNK) await this.#push();
  }

  async #write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.#len === 0 && data.length - off >= CHUNK) {
        // Big aligned pieces go out without a copy.
        await this.#pushChunk(data.subarray(off, off + CHUNK));
        off += CHUNK;
        continue;
      }
      const n = Math.min(CHUNK - this.#len, data.length - off);
      data.copy(this.#buf, this.#len, off, off + n);
      this.#len += n;
      off += n;
      if (this.#len === CHUNK) await this.#push();
    }
  }

  async #zeros(n: number): Promise<void> {
    while (n > 0) {
      const k = Math.min(CHUNK - this.#len, n);
      this.#buf.fill(0, this.#len, this.#len + k);
      this.#len += k;
      n -= k;
      if (this.#len === CHUNK) await this.#push();
    }
  }

  async #bodyFromFd(fd: number, size: number, sync: boolean): Promise<void> {
    let pos = 0;
    while (pos < size) {
      if (this.#len === CHUNK) await this.#push();
      const want = Math.min(CHUNK - this.#len, size - pos);
      const got = sync
        ? readSync(fd, this.#buf, this.#len, want, pos)
        : await new Promise<number>((resolve, reject) =>
            fsRead(fd, this.#buf, this.#len, want, pos, (err, n) => (err ? reject(err) : resolve(n))),
          );
      if (got === 0) {
        // The file shrank while being read: keep the archive consistent with the header.
        await this.#zeros(size - pos);
        return;
      }
      this.#len += got;
      pos += got;
    }
    if (this.#len === CHUNK) await this.#push();
  }

  /** Pushes the current chunk (if any) and waits while the consumer is behind. */
  async #push(): Promise<void> {
    if (this.#len === 0) return;
    const chunk = this.#buf.subarray(0, this.#len);
    this.#buf = Buffer.allocUnsafe(CHUNK);
    this.#len = 0;
    await this.#pushChunk(chunk);
  }

  async #pushChunk(chunk: Buffer): Promise<void> {
    if (this.#closed) throw this.#closed;
    if (!this.stream.push(chunk)) {
      if (this.#closed) throw this.#closed;
      await new Promise<void>((resolve) => {
        this.#drain = resolve;
      });
      if (this.#closed) throw this.#closed;
    }
  }

  #flush(): void {
    if (this.#len === 0) return;
    this.stream.push(this.#buf.subarray(0, this.#len));
    this.#buf = Buffer.allocUnsafe(CHUNK);
    this.#len = 0;
  }
}
