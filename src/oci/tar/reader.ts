import { Readable } from 'node:stream';
import { ContentError } from '../../util/errors.js';
import type { TarEntry } from './entry.js';
import { BLOCK, checksumOk, entryTypeOf, isZeroBlock, padding, parsePax, readNumber, readString } from './header.js';

/** Largest PAX / GNU long-name body accepted: they are held in memory. */
const MAX_META = 8 << 20;
/** Largest body chunk handed out at once. */
const MAX_CHUNK = 1 << 20;

function invalid(msg: string, cause?: unknown): ContentError {
  return new ContentError('INVALID_TAR', msg, cause === undefined ? undefined : { cause });
}

/** Exact-size and up-to-size reads over a stream's chunks, without copying where possible. */
class ByteSource {
  readonly #it: AsyncIterator<unknown>;
  #bufs: Buffer[] = [];
  #avail = 0;
  #eof = false;
  /** Bytes consumed so far (for error messages). */
  offset = 0;

  constructor(r: Readable) {
    this.#it = r[Symbol.asyncIterator]();
  }

  async #more(): Promise<boolean> {
    if (this.#eof) return false;
    let res: IteratorResult<unknown>;
    try {
      res = await this.#it.next();
    } catch (e) {
      if (e instanceof ContentError) throw e;
      throw new ContentError('IO', 'reading tar stream', { cause: e });
    }
    if (res.done) {
      this.#eof = true;
      return false;
    }
    const v = res.value;
    const b = Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v as Uint8Array);
    if (b.length > 0) {
      this.#bufs.push(b);
      this.#avail += b.length;
    }
    return true;
  }

  /** Exactly `n` bytes; undefined at a clean EOF before any byte; throws when EOF cuts them short. */
  async readExact(n: number, what: string): Promise<Buffer | undefined> {
    if (n === 0) return Buffer.alloc(0);
    while (this.#avail < n) {
      if (!(await this.#more())) {
        if (this.#avail === 0) return undefined;
        throw invalid(`tar archive is truncated in ${what} at offset ${this.offset + this.#avail}`);
      }
    }
    this.offset += n;
    const first = this.#bufs[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#bufs.shift();
      else this.#bufs[0] = first.subarray(n);
      this.#avail -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const b = this.#bufs[0]!;
      const k = Math.min(b.length, n - o);
      b.copy(out, o, 0, k);
      o += k;
      if (k === b.length) this.#bufs.shift();
      else this.#bufs[0] = b.subarray(k);
    }
    this.#avail -= n;
    return out;
  }

  /** Between 1 and `n` bytes, or undefined at EOF. */
  async readUpTo(n: number): Promise<Buffer | undefined> {
    while (this.#avail === 0) if (!(await this.#more())) return undefined;
    const first = this.#bufs[0]!;
    const k = Math.min(first.length, n);
    const out = first.subarray(0, k);
    if (k === first.length) this.#bufs.shift();
    else this.#bufs[0] = first.subarray(k);
    this.#avail -= k;
    this.offset += k;
    return out;
  }

  async skip(n: number, what: string): Promise<void> {
    while (n > 0) {
      const b = await this.readUpTo(Math.min(n, MAX_CHUNK));
      if (!b) throw invalid(`tar archive is truncated in ${what}`);
      n -= b.length;
    }
  }

  async drain(): Promise<void> {
    this.#bufs = [];
    this.#avail = 0;
    while (await this.#more()) {
      this.#bufs = [];
      this.#avail = 0;
    }
  }

  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

interface Meta {
  pax: Map<string, Buffer>;
  longName?: string;
  longLink?: string;
}

function applyPax(e: TarEntry, pax: Map<string, Buffer>): void {
  const num = (k: string, v: Buffer): number => {
    const s = v.toString('ascii');
    if (!/^-?[0-9]+(\.[0-9]*)?$/.test(s)) throw invalid(`pax record ${k} of ${e.path} is not a number`);
    const n = Number(s);
    if (!Number.isFinite(n)) throw invalid(`pax record ${k} of ${e.path} is out of range`);
    return n;
  };
  for (const [k, v] of pax) {
    if (k.startsWith('GNU.sparse.')) throw invalid(`tar entry ${e.path}: sparse files are not supported`);
    switch (k) {
      case 'path':
        e.path = v.toString('utf8');
        break;
      case 'linkpath':
        e.linkname = v.toString('utf8');
        break;
      case 'size':
        e.size = num(k, v);
        break;
      case 'uid':
        e.uid = num(k, v);
        break;
      case 'gid':
        e.gid = num(k, v);
        break;
      case 'mtime':
        e.mtime = num(k, v);
        break;
      case 'SCHILY.devmajor':
        e.devmajor = num(k, v);
        break;
      case 'SCHILY.devminor':
        e.devminor = num(k, v);
        break;
      default:
        if (k.startsWith('SCHILY.xattr.')) {
          (e.xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), v);
        } else if (k.startsWith('LIBARCHIVE.xattr.')) {
          let name: string;
          try {
            name = decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length));
          } catch (err) {
            throw invalid(`pax record ${k} of ${e.path} has a malformed name`, err);
          }
          (e.xattrs ??= new Map()).set(name, Buffer.from(v.toString('ascii'), 'base64'));
        }
    }
  }
}

/**
 * Reads a tar stream entry by entry: POSIX pax (global and per-file records), GNU long names and
 * link names, base-256 numeric fields, and `SCHILY.xattr.*` / `LIBARCHIVE.xattr.*` xattrs as
 * byte-exact Buffers. Sparse files and unknown entry types are rejected.
 *
 * Contract: the caller MUST finish with (drain, or abandon) each `body` before asking for the next
 * entry; an unread rest of a body is skipped and that body is destroyed. Errors are ContentError
 * INVALID_TAR (malformed or truncated archive) or IO (the input stream failed). After the
 * end-of-archive marker the rest of the input is read and discarded, so digesting streams
 * upstream see their end. Breaking out of the iteration early destroys `r`.
 */
export async function* readTar(r: Readable): AsyncGenerator<{ entry: TarEntry; body: Readable }> {
  const src = new ByteSource(r);
  const global = new Map<string, Buffer>();
  let body: Readable | undefined;
  let remaining = 0;
  let pad = 0;
  let busy: Promise<void> | undefined;
  let clean = false;
  try {
    for (;;) {
      // === finish the previous body
      if (busy) await busy.catch(() => {});
      if (body && !body.readableEnded) body.destroy();
      await src.skip(remaining + pad, 'an entry body');
      remaining = 0;
      body = undefined;

      // === headers up to the next member
      const meta: Meta = { pax: new Map() };
      let entry: TarEntry | undefined;
      let hdrSize = 0;
      while (!entry) {
        const at = src.offset;
        const h = await src.readExact(BLOCK, 'a header');
        if (!h) {
          clean = true;
          return; // EOF without an end marker: accepted, like Go's archive/tar
        }
        if (isZeroBlock(h)) {
          const h2 = await src.readExact(BLOCK, 'the end-of-archive marker');
          if (h2 && !isZeroBlock(h2)) throw invalid(`tar archive has a lone zero block at offset ${at}`);
          await src.drain();
          clean = true;
          return;
        }
        if (!checksumOk(h)) throw invalid(`tar header at offset ${at} has a bad checksum`);
        const flag = h[156]!;
        const size = readNumber(h, 124, 12, 'size');
        if (size < 0) throw invalid(`tar header at offset ${at} has a negative size`);
        const readMeta = async (what: string): Promise<Buffer> => {
          if (size > MAX_META) throw invalid(`tar ${what} at offset ${at} is too large (${size} bytes)`);
          const b = (await src.readExact(size, what)) ?? Buffer.alloc(0);
          if (b.length !== size) throw invalid(`tar archive is truncated in ${what}`);
          await src.skip(padding(size), what);
          return b;
        };
        switch (flag) {
          case 0x78: // 'x' per-file pax
            for (const [k, v] of parsePax(await readMeta('pax header'))) meta.pax.set(k, v);
            continue;
          case 0x67: // 'g' global pax
            for (const [k, v] of parsePax(await readMeta('global pax header'))) global.set(k, v);
            continue;
          case 0x4c: // 'L' GNU long name
            meta.longName = readString(await readMeta('GNU long name'), 0, size);
            continue;
          case 0x4b: // 'K' GNU long link name
            meta.longLink = readString(await readMeta('GNU long link name'), 0, size);
            continue;
          case 0x53: // 'S' GNU sparse
            throw invalid(`tar entry ${readString(h, 0, 100)}: sparse files are not supported`);
        }
        const type = entryTypeOf(flag);
        if (!type) {
          throw invalid(`tar entry ${readString(h, 0, 100)} has unsupported type ${JSON.stringify(String.fromCharCode(flag))}`);
        }
        const magic = h.toString('latin1', 257, 263);
        let path = readString(h, 0, 100);
        if (magic === 'ustar\0') {
          const prefix = readString(h, 345, 155);
          if (prefix) path = `${prefix}/${path}`;
        }
        const e: TarEntry = {
          path,
          type,
          mode: readNumber(h, 100, 8, 'mode') & 0o7777,
          uid: readNumber(h, 108, 8, 'uid'),
          gid: readNumber(h, 116, 8, 'gid'),
          size,
          mtime: readNumber(h, 136, 12, 'mtime'),
        };
        const link = readString(h, 157, 100);
        if (link) e.linkname = link;
        if (type === 'char' || type === 'block') {
          e.devmajor = readNumber(h, 329, 8, 'devmajor');
          e.devminor = readNumber(h, 337, 8, 'devminor');
        }
        if (meta.longName !== undefined) e.path = meta.longName;
        if (meta.longLink !== undefined) e.linkname = meta.longLink;
        applyPax(e, global);
        applyPax(e, meta.pax);
        if (!Number.isSafeInteger(e.size) || e.size < 0) throw invalid(`tar entry ${e.path} has an invalid size`);
        if (e.uid < 0 || e.gid < 0 || !Number.isSafeInteger(e.uid) || !Number.isSafeInteger(e.gid)) {
          throw invalid(`tar entry ${e.path} has an invalid owner`);
        }
        if (e.type === 'file' && e.path.endsWith('/')) e.type = 'dir';
        if (e.path.length > 1) e.path = e.path.replace(/\/+$/, '');
        if (e.path === '') throw invalid(`tar entry at offset ${at} has an empty name`);
        if (e.path.includes('\0')) throw invalid(`tar entry ${JSON.stringify(e.path)} has a NUL in its name`);
        hdrSize = e.size;
        if (e.type !== 'file') e.size = 0;
        entry = e;
      }

      // === hand out the body
      remaining = entry.size;
      pad = padding(hdrSize) + (hdrSize - entry.size); // data of non-file entries is skipped
      const b = new Readable({
        highWaterMark: MAX_CHUNK,
        read() {
          if (remaining === 0) {
            this.push(null);
            return;
          }
          busy = src.readUpTo(Math.min(remaining, MAX_CHUNK)).then(
            (chunk) => {
              busy = undefined;
              if (!chunk) {
                this.destroy(invalid(`tar archive is truncated in the body of ${entry!.path}`));
                return;
              }
              remaining -= chunk.length;
              this.push(chunk);
              if (remaining === 0) this.push(null);
            },
            (err: unknown) => {
              busy = undefined;
              this.destroy(err as Error);
            },
          );
        },
      });
      body = b;
      yield { entry, body: b };
    }
  } finally {
    if (busy) await (busy as Promise<void>).catch(() => {});
    if (body && !body.readableEnded) body.destroy();
    if (!clean) await src.close().catch(() => {});
  }
}
