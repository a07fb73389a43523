/**
 * ustar header and PAX record encoding (POSIX.1-2001 pax format, `ustar\0` `00`), plus the
 * decoding of GNU and base-256 numeric extensions read back from other tools.
 */
import { ContentError } from '../../util/errors.js';
import type { TarEntry, TarEntryType } from './entry.js';

/** Size of a tar block. */
export const BLOCK = 512;

/** Largest value of an 8-byte octal field (7 digits): 2097151. */
export const MAX_OCTAL_7 = 0o7777777;
/** Largest value of a 12-byte octal field (11 digits): 8 GiB - 1. */
export const MAX_OCTAL_11 = 0o77777777777;

const TYPEFLAG: Record<TarEntryType, number> = {
  file: 0x30, // '0'
  hardlink: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
};

/** Padding needed after `size` body bytes to reach a block boundary. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x01-\x7f]*$/.test(s);
}

function writeOctal(buf: Buffer, off: number, len: number, value: number): void {
  // len-1 digits followed by NUL, zero-padded (the form GNU tar and Go emit).
  const s = Math.trunc(value).toString(8).padStart(len - 1, '0');
  buf.write(s, off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
}

function writeString(buf: Buffer, off: number, len: number, s: string): void {
  if (s) buf.write(s, off, len, 'utf8');
}

/** Splits an ASCII path into ustar prefix (≤155) and name (≤100) fields, or undefined. */
function splitUstarPath(p: string): { prefix: string; name: string } | undefined {
  if (p.length <= 100) return { prefix: '', name: p };
  if (p.length > 256) return undefined;
  // Cut at a '/' so that prefix ≤ 155 and name ≤ 100 (name non-empty).
  for (let i = p.length - 101; i < p.length; i++) {
    if (i < 0) continue;
    if (p.charCodeAt(i) === 0x2f && i <= 155 && p.length - i - 1 <= 100 && p.length - i - 1 > 0) {
      return { prefix: p.slice(0, i), name: p.slice(i + 1) };
    }
  }
  return undefined;
}

/** One PAX extended header record: `"<len> <key>=<value>\n"` where len counts the whole record. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const k = Buffer.from(key, 'utf8');
  const rest = k.length + v.length + 3; // ' ', '=', '\n'
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  const out = Buffer.allocUnsafe(len);
  let o = out.write(`${len} `, 0, 'ascii');
  o += k.copy(out, o);
  out[o++] = 0x3d;
  o += v.copy(out, o);
  out[o] = 0x0a;
  return out;
}

/** Formats seconds as a PAX time: decimal, no exponent, up to 9 fractional digits. */
export function formatPaxTime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  const neg = t < 0;
  const a = Math.abs(t);
  let sec = Math.floor(a);
  let ns = Math.round((a - sec) * 1e9);
  if (ns >= 1e9) {
    sec += 1;
    ns -= 1e9;
  }
  const frac = String(ns).padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${sec}${frac ? `.${frac}` : ''}`;
}

/** An entry's PAX records (empty when plain ustar fields can hold everything). */
export function paxRecordsFor(e: TarEntry, headerPath: string, mtime: number): Buffer[] {
  const recs: Buffer[] = [];
  if (!isAscii(headerPath) || !splitUstarPath(headerPath)) recs.push(paxRecord('path', headerPath));
  const link = e.linkname ?? '';
  if (link && (!isAscii(link) || link.length > 100)) recs.push(paxRecord('linkpath', link));
  if (e.uid > MAX_OCTAL_7) recs.push(paxRecord('uid', String(e.uid)));
  if (e.gid > MAX_OCTAL_7) recs.push(paxRecord('gid', String(e.gid)));
  if (e.type === 'file' && e.size > MAX_OCTAL_11) recs.push(paxRecord('size', String(e.size)));
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_11) recs.push(paxRecord('mtime', formatPaxTime(mtime)));
  if ((e.devmajor ?? 0) > MAX_OCTAL_7) recs.push(paxRecord('SCHILY.devmajor', String(e.devmajor)));
  if ((e.devminor ?? 0) > MAX_OCTAL_7) recs.push(paxRecord('SCHILY.devminor', String(e.devminor)));
  if (e.xattrs && e.xattrs.size > 0) {
    // Sorted for determinism: the Map's insertion order comes from the filesystem.
    for (const k of [...e.xattrs.keys()].sort()) recs.push(paxRecord(`SCHILY.xattr.${k}`, e.xattrs.get(k)!));
  }
  return recs;
}

/**
 * Encodes one 512-byte ustar header. Fields that do not fit are written truncated/clamped:
 * the caller emits PAX records for them first (see {@link paxRecordsFor}).
 */
export function encodeHeader(
  f: {
    path: string;
    typeflag: number;
    mode: number;
    uid: number;
    gid: number;
    size: number;
    mtime: number;
    linkname?: string;
    devmajor?: number;
    devminor?: number;
  },
  out: Buffer = Buffer.alloc(BLOCK),
  off = 0,
): Buffer {
  out.fill(0, off, off + BLOCK);
  const h = out.subarray(off, off + BLOCK);
  const split = isAscii(f.path) ? splitUstarPath(f.path) : undefined;
  if (split) {
    writeString(h, 0, 100, split.name);
    writeString(h, 345, 155, split.prefix);
  } else {
    writeString(h, 0, 100, asciiPlaceholder(f.path, 100));
  }
  writeOctal(h, 100, 8, f.mode & 0o7777);
  writeOctal(h, 108, 8, Math.min(f.uid, MAX_OCTAL_7));
  writeOctal(h, 116, 8, Math.min(f.gid, MAX_OCTAL_7));
  writeOctal(h, 124, 12, Math.min(f.size, MAX_OCTAL_11));
  writeOctal(h, 136, 12, Math.min(Math.max(Math.floor(f.mtime), 0), MAX_OCTAL_11));
  h.fill(0x20, 148, 156); // checksum computed over spaces
  h[156] = f.typeflag;
  if (f.linkname) writeString(h, 157, 100, isAscii(f.linkname) ? f.linkname : asciiPlaceholder(f.linkname, 100));
  h.write('ustar\u000000', 257, 8, 'latin1');
  // uname/gname stay empty: layers must not depend on the build host's user database.
  writeOctal(h, 329, 8, Math.min(f.devmajor ?? 0, MAX_OCTAL_7));
  writeOctal(h, 337, 8, Math.min(f.devminor ?? 0, MAX_OCTAL_7));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  writeOctal(h, 148, 7, sum);
  h[155] = 0x20;
  return out;
}

/** An ASCII stand-in for a field whose real value is in a PAX record (Go archive/tar style). */
function asciiPlaceholder(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const a = s.replace(/[^\x01-\x7f]/g, '_');
  return a.length <= max ? a : a.slice(a.length - max);
}

/** The ustar typeflag of an entry type. */
export function typeflagOf(t: TarEntryType): number {
  return TYPEFLAG[t];
}

/** The entry type of a ustar/GNU typeflag, or undefined for non-member headers. */
export function entryTypeOf(flag: number): TarEntryType | undefined {
  switch (flag) {
    case 0:
    case 0x30:
    case 0x37: // contiguous file
      return 'file';
    case 0x31:
      return 'hardlink';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'char';
    case 0x34:
      return 'block';
    case 0x35:
      return 'dir';
    case 0x36:
      return 'fifo';
    default:
      return undefined;
  }
}

/** Reads a NUL-terminated string field as UTF-8. */
export function readString(h: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && h[end] !== 0) end++;
  return h.toString('utf8', off, end);
}

/**
 * Reads a numeric field: octal (NUL/space terminated, leading spaces allowed) or GNU base-256
 * (high bit of the first byte set; 0xff marks a negative two's-complement value).
 */
export function readNumber(h: Buffer, off: number, len: number, field: string): number {
  const b0 = h[off]!;
  if (b0 & 0x80) {
    const neg = b0 === 0xff;
    let v = 0n;
    for (let i = 0; i < len; i++) {
      let b = h[off + i]!;
      if (i === 0) b &= 0x7f;
      if (neg) b = ~b & 0xff;
      v = (v << 8n) | BigInt(b);
    }
    if (neg) v = -(v + 1n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ContentError('INVALID_TAR', `tar header field ${field} is out of range`);
    }
    return Number(v);
  }
  let i = off;
  const end = off + len;
  while (i < end && h[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = h[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new ContentError('INVALID_TAR', `tar header field ${field} is not an octal number`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  if (digits === 0) return 0;
  return v;
}

/** Verifies a header block's checksum (unsigned sum, also accepting the historic signed sum). */
export function checksumOk(h: Buffer): boolean {
  const stored = readNumber(h, 148, 8, 'chksum');
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    u += b;
    s += b > 127 ? b - 256 : b;
  }
  return stored === u || stored === s;
}

/** True when the block is all zeros (end-of-archive marker). */
export function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

/** Parses PAX records into raw key → value bytes. Throws INVALID_TAR on malformed records. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break; // some writers pad with NULs
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) throw new ContentError('INVALID_TAR', 'malformed pax record: no length');
    const lenStr = buf.toString('ascii', i, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw new ContentError('INVALID_TAR', 'malformed pax record length');
    const len = Number(lenStr);
    const end = i + len;
    if (len < 5 || end > buf.length || buf[end - 1] !== 0x0a) {
      throw new ContentError('INVALID_TAR', 'malformed pax record: bad length');
    }
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end) throw new ContentError('INVALID_TAR', 'malformed pax record: no key');
    const key = buf.toString('utf8', sp + 1, eq);
    out.set(key, Buffer.from(buf.subarray(eq + 1, end - 1)));
    i = end;
  }
  return out;
}
