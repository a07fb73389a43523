import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import { Duplex, PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { createGunzip, createGzip } from 'node:zlib';
import { Digester, DigestingStream, type Digest } from '../digest.js';
import type { Descriptor } from '../descriptor.js';
import type { ContentStore } from '../content/content-store.js';
import { layerMediaType, type Compression } from '../media-types.js';
import { ContentError } from '../../util/errors.js';

export type { Compression } from '../media-types.js';

/** Default zstd level (the zstd CLI's and containerd's default). */
export const DEFAULT_ZSTD_LEVEL = 3;
/** Default gzip level. */
export const DEFAULT_GZIP_LEVEL = 6;

/**
 * How compression runs:
 * - zstd: `zstd` CLI (multithreaded, -T0) when on PATH, else zstd-napi in a worker thread
 *   (zstd-napi's streams compress synchronously and would block the event loop).
 * - gzip: `pigz -n` (parallel, no name/time in the header) when on PATH, else node:zlib on the
 *   libuv thread pool (never blocks the event loop).
 * `'builtin'` forces the in-process implementations, `'external'`/`'auto'` prefer the CLIs.
 * The environment variable TSBUILD_COMPRESSOR sets the initial value.
 * NOTE: compressed bytes, hence blob digests, depend on the backend and library version; the
 * diffId (uncompressed digest) never does.
 */
export type Backend = 'auto' | 'builtin' | 'external';
let backend: Backend = (process.env.TSBUILD_COMPRESSOR as Backend | undefined) ?? 'auto';

/** Selects the compressor implementation for this process (tests and benchmarks). */
export function setCompressionBackend(b: Backend): void {
  backend = b;
}

const toolCache = new Map<string, string | undefined>();
function findTool(name: string): string | undefined {
  if (toolCache.has(name)) return toolCache.get(name);
  let found: string | undefined;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    try {
      accessSync(`${dir}/${name}`, fsConstants.X_OK);
      found = `${dir}/${name}`;
      break;
    } catch {
      // not here
    }
  }
  toolCache.set(name, found);
  return found;
}

// === child process as a Duplex

/** stdin → child → stdout, with backpressure both ways; errors when the child fails. */
class ProcessDuplex extends Duplex {
  readonly #child: ChildProcess;
  #stderr = '';
  #ended = false;

  constructor(cmd: string, args: string[], what: string) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    const fail = (err: Error): void => {
      if (!this.destroyed) this.destroy(err);
    };
    child.on('error', (e) => fail(new ContentError('IO', `${what}: starting ${cmd}`, { cause: e })));
    child.stdin!.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') fail(new ContentError('IO', `${what}: writing to ${cmd}`, { cause: e }));
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      if (!this.push(d)) child.stdout!.pause();
    });
    child.on('close', (code, signal) => {
      this.#ended = true;
      if (code === 0) this.push(null);
      else fail(new ContentError('IO', `${what}: ${cmd} exited with ${code ?? signal}: ${this.#stderr.trim()}`));
    });
  }

  override _read(): void {
    this.#child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#child.stdin!.write(chunk)) cb();
    else this.#child.stdin!.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#child.stdin!.end(cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.#ended) this.#child.kill('SIGKILL');
    cb(err);
  }
}

// === zstd-napi in a worker thread as a Duplex

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.module);
const s = workerData.mode === 'compress'
  ? new zstd.CompressStream({ compressionLevel: workerData.level, nbWorkers: workerData.threads })
  : new zstd.DecompressStream();
s.on('data', (d) => {
  const ab = d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength);
  parentPort.postMessage({ t: 'data', d: ab }, [ab]);
});
s.on('end', () => parentPort.postMessage({ t: 'end' }));
s.on('error', (e) => parentPort.postMessage({ t: 'error', m: String(e && e.message || e) }));
parentPort.on('message', (m) => {
  if (m.t === 'data') s.write(Buffer.from(m.d), () => parentPort.postMessage({ t: 'ack' }));
  else if (m.t === 'end') s.end();
});
`;

// NOTE: architecture exception, like src/util/libc.ts with koffi: the zstd fallback loads the
// `zstd-napi` package, but only inside the worker thread and only when no `zstd` CLI is found.
// It is resolved by name here so that the main thread never loads it.
let zstdModule: string | undefined;
function zstdModulePath(): string {
  zstdModule ??= createRequire(import.meta.url).resolve('zstd-napi');
  return zstdModule;
}

/** Chunks in flight to the worker before `write` waits. */
const WORKER_WINDOW = 4;

class WorkerDuplex extends Duplex {
  readonly #worker: Worker;
  #inflight = 0;
  #waiting: (() => void) | undefined;
  #finalCb: ((e?: Error | null) => void) | undefined;
  #done = false;

  constructor(mode: 'compress' | 'decompress', level: number, what: string) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module: zstdModulePath(), mode, level, threads: 2 },
    });
    this.#worker.on('message', (m: { t: string; d?: ArrayBuffer; m?: string }) => {
      if (m.t === 'data') this.push(Buffer.from(m.d!));
      else if (m.t === 'ack') {
        this.#inflight--;
        if (this.readableLength < this.readableHighWaterMark * 4) this.#release();
      } else if (m.t === 'end') {
        this.#done = true;
        this.push(null);
        this.#finalCb?.();
        void this.#worker.terminate();
      } else if (m.t === 'error') {
        this.destroy(new ContentError('INVALID_ARCHIVE', `${what}: ${m.m}`));
      }
    });
    this.#worker.on('error', (e) => this.destroy(new ContentError('IO', `${what}: worker failed`, { cause: e })));
  }

  #release(): void {
    const w = this.#waiting;
    if (w && this.#inflight < WORKER_WINDOW) {
      this.#waiting = undefined;
      w();
    }
  }

  override _read(): void {
    this.#release();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const ab = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength);
    this.#inflight++;
    this.#worker.postMessage({ t: 'data', d: ab }, [ab as ArrayBuffer]);
    if (this.#inflight < WORKER_WINDOW) cb();
    else this.#waiting = () => cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    // The readable side ends when the worker reports the end of its output.
    this.#finalCb = cb;
    this.#worker.postMessage({ t: 'end' });
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.#done) void this.#worker.terminate();
    cb(err);
  }
}

// === public API

/**
 * A new compressing Duplex (write uncompressed bytes, read compressed ones). `'none'` is a
 * pass-through. zstd never runs on the main thread (a `zstd -T0` child or a worker thread);
 * gzip uses node:zlib (thread pool). The caller owns the stream and must consume its output.
 */
export function compressStream(c: Compression, level?: number): Duplex {
  switch (c) {
    case 'none':
      return new PassThrough({ highWaterMark: 1 << 20 });
    case 'gzip': {
      const l = level ?? DEFAULT_GZIP_LEVEL;
      const pigz = backend !== 'builtin' ? findTool('pigz') : undefined;
      if (pigz) return new ProcessDuplex(pigz, [`-${l}`, '-n', '-c'], 'gzip compression');
      return createGzip({ level: l, chunkSize: 256 << 10 });
    }
    case 'zstd': {
      const l = level ?? DEFAULT_ZSTD_LEVEL;
      const cli = backend !== 'builtin' ? findTool('zstd') : undefined;
      if (cli) return new ProcessDuplex(cli, [`-${l}`, '-T0', '-q', '-c', '--no-progress'], 'zstd compression');
      return new WorkerDuplex('compress', l, 'zstd compression');
    }
  }
  throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `unknown compression ${String(c)}`);
}

/**
 * A new decompressing Duplex for `c` (`'none'` passes through). Corrupt input makes the stream
 * error (ContentError INVALID_ARCHIVE or IO) instead of ending.
 */
export function decompressStream(c: Compression): Duplex {
  switch (c) {
    case 'none':
      return new PassThrough({ highWaterMark: 1 << 20 });
    case 'gzip':
      return createGunzip({ chunkSize: 256 << 10 });
    case 'zstd': {
      const cli = backend !== 'builtin' ? findTool('zstd') : undefined;
      if (cli) return new ProcessDuplex(cli, ['-d', '-q', '-c', '--no-progress'], 'zstd decompression');
      return new WorkerDuplex('decompress', 0, 'zstd decompression');
    }
  }
  throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `unknown compression ${String(c)}`);
}

/**
 * Sniffs the compression of `r` by magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`; anything else
 * is `'none'`) and returns it with a stream that yields every byte of `r`, the sniffed ones
 * included. `r` must not have been read from yet; use the returned stream instead of `r`.
 */
export async function detectCompression(r: Readable): Promise<{ compression: Compression; stream: Readable }> {
  const head: Buffer[] = [];
  let have = 0;
  const it = r[Symbol.asyncIterator]();
  let ended = false;
  while (have < 4) {
    const n = await it.next();
    if (n.done) {
      ended = true;
      break;
    }
    const b = Buffer.isBuffer(n.value) ? n.value : Buffer.from(n.value as Uint8Array);
    head.push(b);
    have += b.length;
  }
  const h = Buffer.concat(head);
  let compression: Compression = 'none';
  if (h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b) compression = 'gzip';
  else if (h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528) compression = 'zstd';
  async function* rest(): AsyncGenerator<Buffer> {
    if (h.length > 0) yield h;
    if (ended) return;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value as Buffer;
    }
  }
  const stream = Readable.from(rest(), { objectMode: false, highWaterMark: 1 << 20 });
  stream.on('close', () => {
    if (!ended) void it.return?.();
  });
  return { compression, stream };
}

/** Options of {@link writeLayer}. */
export interface WriteLayerOptions {
  /** Default 'gzip' (the widest compatibility); 'zstd' needs OCI flavour. */
  compression?: Compression;
  level?: number;
  /** Media type flavour of the returned descriptor (default 'oci'). */
  flavour?: 'oci' | 'docker';
}

/** Counts and digests what passes through (the diffId of a layer). */
class Tap extends Transform {
  readonly digester = new Digester();
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    cb(null, chunk);
  }
}

/**
 * Compresses a layer tar and stores it, in one pass: `tar` → diffId digest → compressor →
 * blob digest → `store.put`. Returns the stored blob's descriptor (layer media type for the
 * flavour and compression), the diffId and the uncompressed size. `tar` is consumed to its end;
 * on error everything is torn down and nothing partial is stored (the store's contract).
 */
export async function writeLayer(
  tar: Readable,
  store: ContentStore,
  opts?: WriteLayerOptions,
): Promise<{ descriptor: Descriptor; diffId: Digest; uncompressedSize: number }> {
  const compression = opts?.compression ?? 'gzip';
  const flavour = opts?.flavour ?? 'oci';
  if (flavour === 'docker' && compression === 'zstd') {
    throw new ContentError('UNSUPPORTED_MEDIA_TYPE', 'docker schema2 manifests have no zstd layer media type');
  }
  const mediaType = layerMediaType(flavour, compression);
  const tap = new Tap();
  const comp = compressStream(compression, opts?.level);
  const blob = new DigestingStream();
  const streams: (Readable | Duplex)[] = [tar, tap, comp, blob];
  // Manual piping with shared teardown: any failure destroys every stage and the put rejects.
  let failed: Error | undefined;
  const fail = (e: Error): void => {
    if (failed) return;
    failed = e;
    for (const s of streams) if (!s.destroyed) s.destroy(e);
  };
  for (const s of streams) s.on('error', fail);
  tar.pipe(tap).pipe(comp).pipe(blob);
  let desc: Descriptor;
  try {
    desc = await store.put(blob, { mediaType });
  } catch (e) {
    const first = failed;
    fail(e as Error);
    throw first ?? e;
  }
  if (failed) throw failed;
  const digest = blob.digest;
  if (desc.digest !== digest || desc.size !== blob.size) {
    throw new ContentError('DIGEST_MISMATCH', `layer blob stored as ${desc.digest} but compressed to ${digest}`);
  }
  return {
    descriptor: { mediaType, digest, size: blob.size },
    diffId: tap.digester.digest(),
    uncompressedSize: tap.digester.size,
  };
}
