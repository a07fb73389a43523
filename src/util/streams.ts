import { Readable, type Duplex } from 'node:stream';
import { ContentError } from './errors.js';

/**
 * Reads a whole stream into memory. For small things only (manifests, configs, JSON
 * documents): with `max`, the stream is destroyed and ContentError SIZE_MISMATCH thrown as soon as
 * more than `max` bytes arrive, naming `what`. Errors of the stream propagate unchanged.
 */
export async function readAll(r: Readable, max?: number, what = 'stream'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of r) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      size += buf.length;
      if (max !== undefined && size > max) {
        throw new ContentError('SIZE_MISMATCH', `${what}: more than the limit of ${max} bytes`);
      }
      chunks.push(buf);
    }
  } catch (e) {
    r.destroy();
    throw e;
  }
  return Buffer.concat(chunks, size);
}

/** A new Readable of in-memory bytes (one chunk). The caller owns it. */
export function readableFrom(data: Uint8Array | string): Readable {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Readable.from([buf], { objectMode: false });
}

/** Reads `r` to its end, discarding the data; resolves with the byte count. Rejects with the stream's error. */
export async function drain(r: Readable): Promise<number> {
  let n = 0;
  for await (const chunk of r) n += (chunk as Buffer).length;
  return n;
}

/**
 * Pipes `src` into `through` and returns `through`, forwarding an error of `src` to `through`
 * (which `pipe()` does not do) and destroying `src` when `through` is destroyed early, so a
 * consumer of the result sees every failure and a dropped result leaks nothing.
 */
export function pipeInto<T extends Duplex>(src: Readable, through: T): T {
  src.on('error', (e) => through.destroy(e));
  through.on('close', () => {
    if (!src.destroyed && !src.readableEnded) src.destroy();
  });
  src.pipe(through);
  return through;
}
