/**
 * Fuzzing of docker-archive / OCI archive reading (src/oci/archive readArchiveStream) into an
 * image store that already holds another image. Inputs: archives written by writeArchive (docker
 * and OCI format) with their members rewritten (index.json, manifest.json, repositories,
 * oci-layout and blob members replaced by mutated JSON or random bytes, dropped, duplicated, or
 * joined by hostile names), and then byte-mutated as tars (flips, truncation, random runs),
 * optionally gzip-compressed.
 *
 * Properties: a failure is a ContentError and leaves the store exactly as it was (same blobs, no
 * temp files, fsck clean); a success loads only complete images (every loaded manifest validates
 * with its config and layers present) and leaves no temp files. Budget and replay: ./budget.ts.
 */
import { gzipSync } from 'node:zlib';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArchiveStream } from '../../src/oci/archive/read.js';
import { writeArchive } from '../../src/oci/archive/write.js';
import { isImageManifest } from '../../src/oci/media-types.js';
import { ImageStore } from '../../src/oci/store/image-store.js';
import { readTar, TarWriter, type TarEntry } from '../../src/oci/tar/index.js';
import { validateImage } from '../../src/oci/validate.js';
import { ContentError } from '../../src/util/errors.js';
import { readAll } from '../../src/util/streams.js';
import { smallImage } from '../src/oci/store/fixtures.js';
import { fuzzParams, fuzzTimeout } from './budget.js';
import { assertNoInternalCause } from './internal.js';

const TIME_BOX_MS = 15_000;

interface Member {
  entry: TarEntry;
  body: Buffer;
}

let root = '';
let dst: ImageStore;
let baseline: string[] = [];
const ARCHIVES: Member[][] = [];

async function members(tar: Readable): Promise<Member[]> {
  const out: Member[] = [];
  for await (const { entry, body } of readTar(tar)) out.push({ entry, body: await readAll(body) });
  return out;
}

async function toTar(ms: readonly Member[]): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    w.stream.on('data', (c: Buffer) => chunks.push(c));
    w.stream.on('end', resolve);
    w.stream.on('error', reject);
  });
  for (const m of ms) await w.add({ ...m.entry, size: m.entry.type === 'file' ? m.body.length : 0 }, m.entry.type === 'file' ? m.body : undefined);
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

async function blobList(s: ImageStore): Promise<string[]> {
  const out: string[] = [];
  for await (const d of s.content.list()) out.push(d);
  return out.sort();
}

// ---- JSON mutation of metadata members ----

type JsonMut = { path: number[]; value: unknown; del: boolean };
const jsonValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(null, '', 0, -1, 2 ** 60, [], {}, '../../etc/passwd', '/etc/passwd', 'blobs/sha256/../../x', 'sha256:' + '0'.repeat(64), 'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'docker.io/library/x:1', 'INVALID::ref', ['a'], { '': 1 }),
);
const jsonMutArb: fc.Arbitrary<JsonMut> = fc.record({ path: fc.array(fc.nat(), { maxLength: 5 }), value: jsonValueArb, del: fc.boolean() });

function mutateJson(text: Buffer, muts: readonly JsonMut[]): Buffer {
  let doc: unknown;
  try {
    doc = JSON.parse(text.toString('utf8'));
  } catch {
    return text;
  }
  for (const m0 of muts) {
    const m = { ...m0, value: structuredClone(m0.value) };
    let parent: Record<string | number, unknown> | undefined;
    let key: string | number | undefined;
    let cur: unknown = doc;
    for (const step of m.path) {
      if (cur === null || typeof cur !== 'object') break;
      const keys: (string | number)[] = Array.isArray(cur) ? cur.map((_, i) => i) : Object.keys(cur);
      if (keys.length === 0) break;
      key = keys[step % keys.length]!;
      parent = cur as Record<string | number, unknown>;
      cur = parent[key];
    }
    if (!parent || key === undefined) doc = m.value;
    else if (m.del) {
      if (Array.isArray(parent)) (parent as unknown[]).splice(key as number, 1);
      else delete parent[key];
    } else parent[key] = m.value;
  }
  return Buffer.from(JSON.stringify(doc) ?? 'null');
}

type MemberOp =
  | { kind: 'json'; which: number; muts: JsonMut[] }
  | { kind: 'replace'; which: number; bytes: Uint8Array }
  | { kind: 'drop'; which: number }
  | { kind: 'dup'; which: number }
  | { kind: 'add'; path: string; type: 'file' | 'symlink' | 'hardlink' | 'dir'; link: string; bytes: Uint8Array };

const memberOpArb: fc.Arbitrary<MemberOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('json' as const), which: fc.nat(), muts: fc.array(jsonMutArb, { minLength: 1, maxLength: 3 }) }) },
  fc.record({ kind: fc.constant('replace' as const), which: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('drop' as const), which: fc.nat() }),
  fc.record({ kind: fc.constant('dup' as const), which: fc.nat() }),
  fc.record({
    kind: fc.constant('add' as const),
    path: fc.constantFrom('index.json', 'manifest.json', 'oci-layout', 'repositories', 'blobs/sha256/' + '0'.repeat(64), '../escape', '/abs', 'blobs/sha256/x', 'abc/layer.tar', 'abc/json', 'x.json', 'blobs'),
    type: fc.constantFrom('file' as const, 'symlink' as const, 'hardlink' as const, 'dir' as const),
    link: fc.constantFrom('index.json', '../../etc/passwd', '/etc/passwd', 'blobs/sha256', 'manifest.json', 'x'),
    bytes: fc.uint8Array({ maxLength: 64 }),
  }),
);

/** Metadata members first (they are what a mutation usually targets), then blobs. */
function pick(ms: readonly Member[], which: number): number {
  const meta = ms.map((m, i) => [m, i] as const).filter(([m]) => !m.entry.path.startsWith('blobs/') || m.body.length < 4096);
  const pool = meta.length ? meta : ms.map((m, i) => [m, i] as const);
  return pool[which % pool.length]![1];
}

function applyMemberOps(base: readonly Member[], ops: readonly MemberOp[]): Member[] {
  const ms = base.map((m) => ({ entry: { ...m.entry }, body: m.body }));
  for (const op of ops) {
    if (ms.length === 0 && op.kind !== 'add') continue;
    switch (op.kind) {
      case 'json': {
        const i = pick(ms, op.which);
        ms[i] = { entry: ms[i]!.entry, body: mutateJson(ms[i]!.body, op.muts) };
        break;
      }
      case 'replace': {
        const i = pick(ms, op.which);
        ms[i] = { entry: ms[i]!.entry, body: Buffer.from(op.bytes) };
        break;
      }
      case 'drop':
        ms.splice(op.which % ms.length, 1);
        break;
      case 'dup': {
        const i = op.which % ms.length;
        ms.splice(i, 0, ms[i]!);
        break;
      }
      case 'add': {
        const body = op.type === 'file' ? Buffer.from(op.bytes) : Buffer.alloc(0);
        const e: TarEntry = { path: op.path, type: op.type, mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 };
        if (op.type === 'symlink' || op.type === 'hardlink') e.linkname = op.link;
        ms.push({ entry: e, body });
        break;
      }
    }
  }
  return ms;
}

type ByteOp = { kind: 'flip'; at: number; xor: number } | { kind: 'truncate'; at: number } | { kind: 'random'; at: number; bytes: number[] };
const byteOpArb: fc.Arbitrary<ByteOp> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('random' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 12 }) }),
);

function applyByteOps(input: Buffer, ops: readonly ByteOp[]): Buffer {
  let b = Buffer.from(input);
  for (const op of ops) {
    if (b.length === 0) break;
    if (op.kind === 'flip') b[op.at % b.length]! ^= op.xor;
    else if (op.kind === 'truncate') b = b.subarray(0, op.at % (b.length + 1));
    else Buffer.from(op.bytes).copy(b, op.at % b.length);
  }
  return b;
}

async function timeBox<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${TIME_BOX_MS} ms`)), TIME_BOX_MS);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fuzz: docker-archive and OCI archive reading', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tsbuild-fuzz-archive-'));
    const src = await ImageStore.open(join(root, 'src'));
    const a = await smallImage(src, 'a');
    const b = await smallImage(src, 'b');
    ARCHIVES.push(await members(writeArchive(src.content, [{ descriptor: a, names: ['docker.io/library/app:1'] }])));
    ARCHIVES.push(await members(writeArchive(src.content, [{ descriptor: a, names: ['example.com/x/app:2'] }, { descriptor: b }], { format: 'oci' })));
    // the destination already holds image b: a failed load must not take its blobs away
    dst = await ImageStore.open(join(root, 'dst'));
    await readArchiveStream(Readable.from([await toTar(await members(writeArchive(src.content, [{ descriptor: b, names: ['b:1'] }])))]), dst.content);
    baseline = await blobList(dst);
  }, 120_000);
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('the unmutated archives load', async () => {
    for (const ms of ARCHIVES) {
      const r = await readArchiveStream(Readable.from([await toTar(ms)]), dst.content);
      expect(r.images.length).toBeGreaterThan(0);
    }
    for (const d of await blobList(dst)) if (!baseline.includes(d)) await dst.content.delete(d as never);
    expect(await blobList(dst)).toEqual(baseline);
  });

  it(
    'a mutated archive loads complete images or fails with a ContentError leaving the store as it was',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat(),
          fc.array(memberOpArb, { maxLength: 3 }),
          fc.array(byteOpArb, { maxLength: 2 }),
          fc.boolean(),
          fc.integer({ min: 1, max: 8192 }),
          async (which, memberOps, byteOps, gzip, chunk) => {
            const base = ARCHIVES[which % ARCHIVES.length]!;
            let tar = applyByteOps(await toTar(applyMemberOps(base, memberOps)), byteOps);
            if (gzip) tar = gzipSync(tar);
            const parts: Buffer[] = [];
            for (let i = 0; i < tar.length; i += chunk) parts.push(tar.subarray(i, i + chunk));
            let failed: unknown;
            let images: { descriptor: { digest: string; mediaType: string } }[] = [];
            try {
              images = (await timeBox('readArchiveStream', readArchiveStream(Readable.from(parts), dst.content))).images;
            } catch (e) {
              failed = e;
            }
            // first: a time-boxed (still running) or untyped failure, before looking at the store
            if (failed !== undefined) {
              if (!(failed instanceof ContentError)) throw new Error(`readArchiveStream threw a non-ContentError: ${(failed as Error)?.stack ?? String(failed)}`);
              assertNoInternalCause(failed, 'readArchiveStream');
            }
            expect(await readdir(join(root, 'dst', 'tmp'))).toEqual([]);
            const fsck = await dst.fsck();
            expect(fsck.bad).toEqual([]);
            if (failed !== undefined) {
              expect(await blobList(dst)).toEqual(baseline);
              return;
            }
            const after = await blobList(dst);
            expect(baseline.filter((d) => !after.includes(d))).toEqual([]);
            try {
              for (const e of images) {
                expect(await dst.content.has(e.descriptor.digest as never)).toBe(true);
                if (isImageManifest(e.descriptor.mediaType)) await validateImage(await dst.image(e.descriptor as never));
              }
            } finally {
              for (const d of await blobList(dst)) if (!baseline.includes(d)) await dst.content.delete(d as never);
            }
          },
        ),
        fuzzParams(200, 1),
      );
    },
    fuzzTimeout(120_000),
  );
});
