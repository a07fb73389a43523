import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ContentStore } from '../../../../src/oci/content/content-store.js';
import type { Descriptor } from '../../../../src/oci/descriptor.js';
import type { Digest } from '../../../../src/oci/digest.js';
import { MediaTypes } from '../../../../src/oci/media-types.js';
import {
  compressStream,
  decompressStream,
  detectCompression,
  setCompressionBackend,
  writeLayer,
  type Backend,
  type Compression,
} from '../../../../src/oci/tar/index.js';
import { ContentError, hasCode } from '../../../../src/util/errors.js';

afterEach(() => setCompressionBackend('auto'));

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Pushes `data` through a Duplex and collects its output. */
async function through(d: NodeJS.ReadWriteStream & Readable, data: Buffer): Promise<Buffer> {
  const out = collect(d);
  Readable.from(chunks(data)).pipe(d);
  return out;
}

function* chunks(data: Buffer, size = 300_000): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

function sample(): Buffer {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(100_000));
  return Buffer.concat([text, randomBytes(1 << 20), text]);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const have = (tool: string): boolean => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;

/** A minimal in-memory ContentStore (verifies like the real ones do). */
class MemStore implements ContentStore {
  readonly blobs = new Map<string, Buffer>();
  async has(d: Digest): Promise<boolean> {
    return this.blobs.has(d);
  }
  async stat(d: Digest): Promise<{ size: number } | undefined> {
    const b = this.blobs.get(d);
    return b ? { size: b.length } : undefined;
  }
  async open(desc: Pick<Descriptor, 'digest' | 'size'> | Digest): Promise<Readable> {
    const d = typeof desc === 'string' ? desc : desc.digest;
    const b = this.blobs.get(d);
    if (!b) throw new ContentError('NOT_FOUND', `blob ${d}`);
    return Readable.from([b]);
  }
  async read(d: Digest): Promise<Buffer> {
    return collect(await this.open(d));
  }
  async put(data: Readable | Uint8Array, expected?: Partial<Descriptor>): Promise<Descriptor> {
    const b = data instanceof Readable ? await collect(data) : Buffer.from(data);
    const digest = sha(b) as Digest;
    if (expected?.digest && expected.digest !== digest) throw new ContentError('DIGEST_MISMATCH', 'mismatch');
    this.blobs.set(digest, b);
    return { mediaType: expected?.mediaType ?? 'application/octet-stream', digest, size: b.length };
  }
  async delete(d: Digest): Promise<void> {
    this.blobs.delete(d);
  }
  async *list(): AsyncIterable<Digest> {
    for (const k of this.blobs.keys()) yield k as Digest;
  }
  path(d: Digest): string {
    return `/nonexistent/${d}`;
  }
}

const backends: Backend[] = ['builtin', 'auto'];
const kinds: Compression[] = ['gzip', 'zstd', 'none'];

describe('compressStream / decompressStream', () => {
  for (const be of backends) {
    for (const c of kinds) {
      it(`round-trips ${c} (${be})`, async () => {
        setCompressionBackend(be);
        const data = sample();
        const z = await through(compressStream(c), data);
        if (c !== 'none') expect(z.length).toBeLessThan(data.length / 2);
        const back = await through(decompressStream(c), z);
        expect(back.equals(data)).toBe(true);
        const tool = c === 'gzip' ? 'gzip' : c === 'zstd' ? 'zstd' : '';
        if (tool && have(tool)) {
          // the reference tool reads what we wrote
          const viaTool = execFileSync(tool, ['-d', '-c'], { input: z, maxBuffer: 64 << 20 });
          expect(viaTool.equals(data)).toBe(true);
        }
      });
    }
    it(`errors on corrupt zstd and gzip input (${be})`, async () => {
      setCompressionBackend(be);
      for (const c of ['gzip', 'zstd'] as const) {
        const z = await through(compressStream(c), sample());
        const bad = Buffer.concat([z.subarray(0, 100), Buffer.alloc(5000, 0x55)]);
        await expect(through(decompressStream(c), bad)).rejects.toThrow();
      }
    });
  }

  it('keeps the event loop running while zstd compresses in-process', async () => {
    setCompressionBackend('builtin');
    const data = Buffer.concat([sample(), sample(), sample(), sample()]);
    let ticks = 0;
    const t = setInterval(() => ticks++, 1);
    const started = Date.now();
    await through(compressStream('zstd', 19), data);
    clearInterval(t);
    const ms = Date.now() - started;
    // A main-thread compressor would starve the timer for the whole run.
    expect(ticks).toBeGreaterThan(Math.min(10, ms / 20));
  });
});

describe('detectCompression', () => {
  it('sniffs gzip, zstd and plain streams and gives back every byte', async () => {
    for (const c of kinds) {
      const z = await through(compressStream(c), sample());
      const { compression, stream } = await detectCompression(Readable.from([z.subarray(0, 1), z.subarray(1, 3), z.subarray(3)]).pipe(new PassThrough()));
      expect(compression).toBe(c);
      expect((await collect(stream)).equals(z)).toBe(true);
    }
  });

  it('handles empty and tiny streams', async () => {
    const empty = await detectCompression(Readable.from([]));
    expect(empty.compression).toBe('none');
    expect((await collect(empty.stream)).length).toBe(0);
    const tiny = await detectCompression(Readable.from([Buffer.from([0x1f])]));
    expect(tiny.compression).toBe('none');
    expect(await collect(tiny.stream)).toEqual(Buffer.from([0x1f]));
  });
});

describe('writeLayer', () => {
  for (const c of kinds) {
    it(`stores a ${c} layer and reports diffId and digests from one pass`, async () => {
      const store = new MemStore();
      const tar = sample();
      const res = await writeLayer(Readable.from(chunks(tar)), store, { compression: c });
      expect(res.diffId).toBe(sha(tar));
      expect(res.uncompressedSize).toBe(tar.length);
      const blob = store.blobs.get(res.descriptor.digest)!;
      expect(res.descriptor.digest).toBe(sha(blob));
      expect(res.descriptor.size).toBe(blob.length);
      expect(res.descriptor.mediaType).toBe(
        c === 'gzip' ? MediaTypes.OciLayerGzip : c === 'zstd' ? MediaTypes.OciLayerZstd : MediaTypes.OciLayer,
      );
      expect((await through(decompressStream(c), blob)).equals(tar)).toBe(true);
    });
  }

  it('uses docker media types and refuses docker+zstd', async () => {
    const store = new MemStore();
    const res = await writeLayer(Readable.from([sample()]), store, { flavour: 'docker' });
    expect(res.descriptor.mediaType).toBe(MediaTypes.DockerLayer);
    const err = await writeLayer(Readable.from([sample()]), store, { flavour: 'docker', compression: 'zstd' }).catch((e: unknown) => e);
    expect(hasCode(err, 'UNSUPPORTED_MEDIA_TYPE')).toBe(true);
  });

  it('fails and stores nothing when the tar stream fails', async () => {
    const store = new MemStore();
    const broken = new Readable({
      read() {
        this.push(Buffer.alloc(100_000, 1));
        this.destroy(new ContentError('IO', 'disk on fire'));
      },
    });
    await expect(writeLayer(broken, store, { compression: 'zstd' })).rejects.toThrow(/disk on fire/);
    expect(store.blobs.size).toBe(0);
  });
});
