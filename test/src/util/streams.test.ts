import { PassThrough, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ContentError } from '../../../src/util/errors.js';
import { drain, pipeInto, readAll, readableFrom } from '../../../src/util/streams.js';

describe('readAll', () => {
  it('concatenates chunks', async () => {
    expect((await readAll(Readable.from([Buffer.from('ab'), Buffer.from('cd')]))).toString()).toBe('abcd');
    expect((await readAll(Readable.from([]))).length).toBe(0);
  });

  it('stops at the limit, destroys the stream and names it', async () => {
    let produced = 0;
    const r = new Readable({
      read() {
        produced += 1024;
        this.push(Buffer.alloc(1024));
      },
    });
    const e = await readAll(r, 4096, 'manifest sha256:x').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ContentError);
    expect((e as ContentError).code).toBe('SIZE_MISMATCH');
    expect((e as Error).message).toBe('manifest sha256:x: more than the limit of 4096 bytes');
    expect(r.destroyed).toBe(true);
    expect(produced).toBeLessThan(64 * 1024);
  });

  it('accepts exactly the limit', async () => {
    expect((await readAll(readableFrom(Buffer.alloc(10)), 10)).length).toBe(10);
  });

  it('propagates stream errors', async () => {
    const r = new PassThrough();
    setImmediate(() => r.destroy(new Error('boom')));
    await expect(readAll(r)).rejects.toThrow('boom');
  });
});

describe('readableFrom / drain / pipeInto', () => {
  it('readableFrom respects views into larger buffers', async () => {
    const big = Buffer.from('0123456789');
    const view = new Uint8Array(big.buffer, big.byteOffset + 2, 3);
    expect((await readAll(readableFrom(view))).toString()).toBe('234');
    expect(await drain(readableFrom('hello'))).toBe(5);
  });

  it('pipeInto forwards source errors to the result', async () => {
    const src = new PassThrough();
    const out = pipeInto(src, createGzip());
    src.write('data');
    setImmediate(() => src.destroy(new Error('source failed')));
    await expect(drain(out)).rejects.toThrow('source failed');
  });

  it('pipeInto destroys the source when the result is destroyed early', async () => {
    const src = new PassThrough();
    const out = pipeInto(src, new PassThrough());
    out.destroy();
    await new Promise((r) => setImmediate(r));
    expect(src.destroyed).toBe(true);
  });
});
