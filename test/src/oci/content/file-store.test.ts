import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../../src/oci/content/file-store.js';
import { sha256, type Digest } from '../../../../src/oci/digest.js';
import { hasCode } from '../../../../src/util/errors.js';
import { transpileSrc } from '../store/transpile.js';

let root: string;
let store: FileContentStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tsbuild-fs-'));
  store = new FileContentStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('FileContentStore', () => {
  it('stores, stats, reads, opens and lists blobs at blobs/sha256/<hex>', async () => {
    const data = Buffer.from('hello blob');
    const d = await store.put(data, { mediaType: 'text/plain' });
    expect(d).toEqual({ mediaType: 'text/plain', digest: sha256(data), size: data.length });
    expect(store.path(d.digest)).toBe(join(root, 'blobs', 'sha256', d.digest.slice(7)));
    expect(await readFile(store.path(d.digest))).toEqual(data);
    expect(await store.has(d.digest)).toBe(true);
    expect(await store.stat(d.digest)).toEqual({ size: data.length });
    expect(await store.read(d.digest)).toEqual(data);
    expect(await drain(await store.open(d))).toEqual(data);
    const listed: Digest[] = [];
    for await (const x of store.list()) listed.push(x);
    expect(listed).toEqual([d.digest]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('streams a put from a Readable and verifies an expected digest and size', async () => {
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
    const all = Buffer.concat(chunks);
    const d = await store.put(Readable.from(chunks), { digest: sha256(all), size: all.length });
    expect(d.digest).toBe(sha256(all));
    expect(d.mediaType).toBe('application/octet-stream');
    expect((await store.read(d.digest)).equals(all)).toBe(true);
  });

  it('stores nothing on digest or size mismatch', async () => {
    const data = Buffer.from('some bytes');
    const wrong = sha256('other bytes');
    const e1 = await errorOf(store.put(Readable.from([data]), { digest: wrong }));
    expect(hasCode(e1, 'DIGEST_MISMATCH')).toBe(true);
    const e2 = await errorOf(store.put(data, { digest: sha256(data), size: data.length + 1 }));
    expect(hasCode(e2, 'SIZE_MISMATCH')).toBe(true);
    const e3 = await errorOf(store.put(data, { digest: sha256(data), size: 3 }));
    expect(hasCode(e3, 'SIZE_MISMATCH')).toBe(true);
    expect(await store.has(wrong)).toBe(false);
    expect(await store.has(sha256(data))).toBe(false);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('rejects wrong bytes even when the expected blob is already stored', async () => {
    const data = Buffer.from('present');
    const d = await store.put(data);
    const e = await errorOf(store.put(Buffer.from('PRESENT'), { digest: d.digest }));
    expect(hasCode(e, 'DIGEST_MISMATCH')).toBe(true);
    expect(await store.read(d.digest)).toEqual(data);
  });

  it('open() errors with DIGEST_MISMATCH when a stored blob was corrupted, read() too', async () => {
    const d = await store.put(Buffer.from('original content'));
    await writeFile(store.path(d.digest), 'tampered content');
    const e = await errorOf(drain(await store.open(d)));
    expect(hasCode(e, 'DIGEST_MISMATCH')).toBe(true);
    expect(hasCode(await errorOf(store.read(d.digest)), 'DIGEST_MISMATCH')).toBe(true);
    await writeFile(store.path(d.digest), 'short');
    expect(hasCode(await errorOf(store.open(d)), 'SIZE_MISMATCH')).toBe(true);
  });

  it('open() and read() of a missing blob throw NOT_FOUND naming the digest; read() is bounded', async () => {
    const missing = sha256('nope');
    const e = await errorOf(store.open(missing));
    expect(hasCode(e, 'NOT_FOUND')).toBe(true);
    expect(String((e as Error).message)).toContain(missing);
    expect(hasCode(await errorOf(store.read(missing)), 'NOT_FOUND')).toBe(true);
    const d = await store.put(Buffer.alloc(1000));
    expect(hasCode(await errorOf(store.read(d.digest, 999)), 'SIZE_MISMATCH')).toBe(true);
    expect((await store.read(d.digest, 1000)).length).toBe(1000);
  });

  it('rejects negative sizes and malformed digests', async () => {
    expect(hasCode(await errorOf(store.put(Buffer.from('x'), { size: -1 })), 'INVALID_DESCRIPTOR')).toBe(true);
    expect(hasCode(await errorOf(store.put(Buffer.from('x'), { digest: 'sha256:abc' as Digest })), 'INVALID_DIGEST')).toBe(true);
  });

  it('concurrent puts of the same blob in one process leave one blob and no temp files', async () => {
    const data = Buffer.alloc(3 << 20, 7);
    const ds = await Promise.all(Array.from({ length: 6 }, () => store.put(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]))));
    expect(new Set(ds.map((d) => d.digest)).size).toBe(1);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toHaveLength(1);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect((await store.read(ds[0]!.digest, 4 << 20)).equals(data)).toBe(true);
  });

  it('delete() removes a blob and is idempotent', async () => {
    const d = await store.put(Buffer.from('bye'));
    await store.delete(d.digest);
    await store.delete(d.digest);
    expect(await store.has(d.digest)).toBe(false);
  });
});

describe('FileContentStore across processes', () => {
  let lib: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    lib = await transpileSrc();
  });
  afterAll(async () => {
    await lib?.cleanup();
  });

  /** A child that writes a deterministic pseudo-random blob of `mib` MiB, slowly when asked. */
  function child(storeRoot: string, mib: number, delayMs: number): ReturnType<typeof spawn> {
    const script = `
      import { Readable } from 'node:stream';
      import { createHash } from 'node:crypto';
      import { setTimeout as sleep } from 'node:timers/promises';
      const { FileContentStore } = await import(${JSON.stringify(join(lib.dir, 'src/oci/content/file-store.js'))});
      async function* gen() {
        let block = createHash('sha256').update('seed').digest();
        for (let i = 0; i < ${mib} * 32; i++) {
          const parts = [];
          for (let j = 0; j < 1024; j++) { block = createHash('sha256').update(block).digest(); parts.push(block); }
          yield Buffer.concat(parts);
          if (${delayMs} > 0) await sleep(${delayMs});
        }
      }
      const s = new FileContentStore(${JSON.stringify(storeRoot)});
      const d = await s.put(Readable.from(gen()));
      process.stdout.write(d.digest);
    `;
    return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  function run(p: ReturnType<typeof spawn>): Promise<{ code: number | null; out: string; err: string }> {
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    return new Promise((res) => p.on('close', (code) => res({ code, out, err })));
  }

  it('two processes writing the same blob both succeed; one blob, verified, no temp files', async () => {
    const [a, b] = await Promise.all([run(child(root, 16, 1)), run(child(root, 16, 0))]);
    expect(a.err).toBe('');
    expect(b.err).toBe('');
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.out).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(a.out).toBe(b.out);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([a.out.slice(7)]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    const h = createHash('sha256');
    for await (const c of await store.open(a.out as Digest)) h.update(c as Buffer);
    expect(`sha256:${h.digest('hex')}`).toBe(a.out);
  });

  it('a writer killed mid-write leaves only a temp file, which cleanTemp() removes', async () => {
    const p = child(root, 64, 20);
    const done = run(p);
    // Wait until the temp file exists and has grown.
    for (let i = 0; i < 1500; i++) {
      const names = await readdir(join(root, 'tmp')).catch(() => [] as string[]);
      if (names.length > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200));
    p.kill('SIGKILL');
    const res = await done;
    expect(res.code).toBe(null);
    expect((await readdir(join(root, 'tmp'))).length).toBe(1);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([]);
    expect(await store.cleanTemp()).toBe(1);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });
});
