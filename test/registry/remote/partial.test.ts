import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { digestHex, sha256 } from '../../../src/oci/digest.js';
import { ContentError } from '../../../src/util/errors.js';
import { PartialFileTarget } from '../../../registry/remote/partial.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function setup(): Promise<{ store: FileContentStore; target: PartialFileTarget; dir: string; bytes: Buffer; desc: Descriptor }> {
  const root = await mkdtemp(join(tmpdir(), 'tsbuild-partial-'));
  dirs.push(root);
  const store = new FileContentStore(root);
  const dir = join(root, 'tmp', 'partial');
  const bytes = randomBytes(3 << 20);
  const desc: Descriptor = { mediaType: 'application/octet-stream', digest: sha256(bytes), size: bytes.length };
  return { store, target: new PartialFileTarget(dir, store), dir, bytes, desc };
}

// Buffers are compared with equals(): a deep toEqual of megabytes takes vitest many seconds.

/** `b` in 100 kB pieces, failing after `failAfter` bytes when given. */
async function* pieces(b: Buffer, failAfter?: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += 100_000) {
    if (failAfter !== undefined && i >= failAfter) throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    yield b.subarray(i, i + 100_000);
  }
}

describe('PartialFileTarget.finish with a FileContentStore (the download written once)', () => {
  it('stores a fresh download and leaves no partial file', async () => {
    const { store, target, dir, bytes, desc } = await setup();
    const w = (await target.open(desc))!;
    expect(w.finish).toBeTypeOf('function');
    expect(w.offset).toBe(0);
    await w.finish!(pieces(bytes));
    expect((await store.read(desc.digest, 8 << 20)).equals(bytes)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps every byte received when the source fails, and a later run continues from there', async () => {
    const { store, target, dir, bytes, desc } = await setup();
    const w = (await target.open(desc))!;
    const err = await w.finish!(pieces(bytes, 1_000_000)).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ECONNRESET');
    expect(w.offset).toBe(1_000_000);
    await w.keep();
    expect(await store.has(desc.digest)).toBe(false);
    const partial = join(dir, `${digestHex(desc.digest)}.partial`);
    expect((await readFile(partial)).equals(bytes.subarray(0, 1_000_000))).toBe(true);

    const again = (await target.open(desc))!;
    expect(again.offset).toBe(1_000_000);
    await again.finish!(pieces(bytes.subarray(again.offset)));
    expect((await store.read(desc.digest, 8 << 20)).equals(bytes)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses bytes that do not match the digest: nothing stored, the caller discards the file', async () => {
    const { store, target, dir, bytes, desc } = await setup();
    // an earlier run left a wrong prefix
    await target.open(desc).then((w) => w!.keep());
    await writeFile(join(dir, `${digestHex(desc.digest)}.partial`), Buffer.alloc(1000, 7));
    const w = (await target.open(desc))!;
    expect(w.offset).toBe(1000);
    const err = await w.finish!(pieces(bytes.subarray(1000))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContentError);
    expect((err as ContentError).code).toBe('DIGEST_MISMATCH');
    expect(await store.has(desc.digest)).toBe(false);
    await w.discard();
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses more bytes than the descriptor says without storing them', async () => {
    const { store, target, bytes, desc } = await setup();
    const w = (await target.open(desc))!;
    const err = await w.finish!(pieces(Buffer.concat([bytes, Buffer.alloc(10)]))).catch((e: unknown) => e);
    expect((err as ContentError).code).toBe('SIZE_MISMATCH');
    expect(await store.has(desc.digest)).toBe(false);
    await w.discard();
  });

  it('a blob another writer stored meanwhile is kept; the partial file goes', async () => {
    const { store, target, dir, bytes, desc } = await setup();
    const w = (await target.open(desc))!;
    await store.put(bytes, desc);
    const before = await stat(store.path(desc.digest));
    await w.finish!(pieces(bytes));
    expect((await stat(store.path(desc.digest))).ino).toBe(before.ino);
    expect(await readdir(dir)).toEqual([]);
  });
});
