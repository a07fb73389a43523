import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ContentError } from '../util/errors.js';

/**
 * A content digest `algorithm:hex` (image-spec descriptor.md#digests). Branded so that
 * only {@link parseDigest} and the sha256 helpers can make one.
 */
export type Digest = string & { readonly __brand: 'Digest' };

const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const HEX_LEN: Record<string, number> = { sha256: 64, sha512: 128 };

/** Parses and validates a digest string; throws ContentError INVALID_DIGEST. */
export function parseDigest(s: string): Digest {
  const m = DIGEST_RE.exec(s);
  if (!m) throw new ContentError('INVALID_DIGEST', `invalid digest ${JSON.stringify(s)}`);
  const [, alg, hex] = m as unknown as [string, string, string];
  const len = HEX_LEN[alg];
  if (len === undefined) throw new ContentError('INVALID_DIGEST', `unsupported digest algorithm ${alg} in ${s}`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new ContentError('INVALID_DIGEST', `invalid ${alg} digest ${JSON.stringify(s)}`);
  }
  return s as Digest;
}

/** True when `s` is a well-formed, supported digest. */
export function isDigest(s: string): s is Digest {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** The algorithm part of a digest (`sha256`). */
export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

/** The encoded (hex) part of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** sha256 digest of in-memory bytes (manifests, configs: small things only). */
export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** A running sha256 that yields a Digest. */
export class Digester {
  readonly #hash: Hash = createHash('sha256');
  #size = 0;
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
  }
  get size(): number {
    return this.#size;
  }
  digest(): Digest {
    return `sha256:${this.#hash.digest('hex')}` as Digest;
  }
}

/**
 * A pass-through stream that digests and counts what flows through it. When `expected`
 * is given, the stream errors with DIGEST_MISMATCH / SIZE_MISMATCH at the end (or as soon
 * as the size is exceeded) instead of finishing: consumers never see a clean end for bad data.
 */
export class DigestingStream extends Transform {
  readonly #digester = new Digester();
  readonly #expected: { digest?: Digest; size?: number; what?: string } | undefined;
  #result: Digest | undefined;

  constructor(expected?: { digest?: Digest; size?: number; what?: string }) {
    super();
    this.#expected = expected;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#digester.update(chunk);
    const max = this.#expected?.size;
    if (max !== undefined && this.#digester.size > max) {
      cb(new ContentError('SIZE_MISMATCH', `${this.#what()}: more than the expected ${max} bytes`));
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const d = this.#digester.digest();
    this.#result = d;
    const exp = this.#expected;
    if (exp?.size !== undefined && this.#digester.size !== exp.size) {
      cb(new ContentError('SIZE_MISMATCH', `${this.#what()}: got ${this.#digester.size} bytes, expected ${exp.size}`));
      return;
    }
    if (exp?.digest !== undefined && d !== exp.digest) {
      cb(new ContentError('DIGEST_MISMATCH', `${this.#what()}: content has digest ${d}`));
      return;
    }
    cb();
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#digester.size;
  }

  /** The digest, available once the stream has finished. */
  get digest(): Digest {
    if (!this.#result) throw new ContentError('IO', 'digest read before the stream finished');
    return this.#result;
  }

  #what(): string {
    return this.#expected?.what ?? (this.#expected?.digest ? `blob ${this.#expected.digest}` : 'stream');
  }
}
