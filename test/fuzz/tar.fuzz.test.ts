/**
 * Fuzzing of the layer tar reader and extractor (src/oci/tar readTar/extractLayer). Inputs: the
 * fixtures in testdata/layers/*.tar, tars of random entries made by TarWriter, and hand-made raw
 * ustar/PAX tars with hostile names (`..`, absolute paths into a sentinel tree, symlinks and
 * hardlinks that lead out, whiteouts), all mutated byte-wise: flipped header bytes, rewritten
 * name/size/checksum/type/link fields, injected PAX records, truncation, duplicated blocks.
 *
 * Properties: the sentinel tree beside the target (and its link counts) is never changed; every
 * error is a ContentError; readTar alone fails only with ContentErrors; no case exceeds the time box.
 * Budget and replay: see ./budget.ts.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractLayer, readTar, TarWriter, type TarEntry } from '../../src/oci/tar/index.js';
import { ContentError } from '../../src/util/errors.js';
import { fuzzParams, fuzzTimeout } from './budget.js';
import { assertNoInternalCause } from './internal.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const TIME_BOX_MS = 10_000;

const FIXTURES: Buffer[] = (() => {
  const dir = join(ROOT, 'testdata/layers');
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.tar')).sort().map((f) => readFileSync(join(dir, f)));
  } catch {
    return [];
  }
})();

// ---- raw ustar/PAX encoding (independent of the code under test) ----

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0').slice(-(width - 1)) + '\0';
}

function setString(h: Buffer, off: number, len: number, s: string | Buffer): void {
  h.fill(0, off, off + len);
  (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).copy(h, off, 0, len);
}

function fixChecksum(h: Buffer, at = 0): void {
  h.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[at + i]!;
  h.write(sum.toString(8).padStart(6, '0').slice(-6) + '\0 ', at + 148, 'latin1');
}

interface RawEntry {
  name: string;
  type: string; // typeflag character
  link?: string;
  body?: Buffer;
  pax?: [string, string][];
  mode?: number;
}

function paxRecord(k: string, v: string): string {
  const core = ` ${k}=${v}\n`;
  let len = Buffer.byteLength(core) + 1;
  while (String(len).length + Buffer.byteLength(core) !== len) len = String(len).length + Buffer.byteLength(core);
  return `${len}${core}`;
}

function header(name: string, type: string, size: number, link = '', mode = 0o644): Buffer {
  const h = Buffer.alloc(512);
  setString(h, 0, 100, name);
  h.write(octal(mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(1700000000, 12), 136, 'latin1');
  h.write(type.slice(0, 1) || '0', 156, 'latin1');
  setString(h, 157, 100, link);
  h.write('ustar\0' + '00', 257, 'latin1');
  fixChecksum(h);
  return h;
}

function pad(b: Buffer): Buffer {
  const r = b.length % 512;
  return r === 0 ? b : Buffer.concat([b, Buffer.alloc(512 - r)]);
}

function rawTar(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const recs: [string, string][] = [...(e.pax ?? [])];
    if (Buffer.byteLength(e.name) > 100) recs.push(['path', e.name]);
    if (e.link && Buffer.byteLength(e.link) > 100) recs.push(['linkpath', e.link]);
    if (recs.length) {
      const body = Buffer.from(recs.map(([k, v]) => paxRecord(k, v)).join(''), 'utf8');
      parts.push(header('PaxHeaders/x', 'x', body.length), pad(body));
    }
    const body = e.type === '0' ? (e.body ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(header(e.name, e.type, body.length, e.link ?? '', e.mode ?? 0o644), pad(body));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// ---- the sentinel tree ----

let work = '';
let parent = '';
const TARGET = () => join(parent, 'target');

function buildSentinel(): void {
  mkdirSync(join(parent, 'sentinel', 'sub'), { recursive: true });
  writeFileSync(join(parent, 'sentinel', 'a.txt'), 'sentinel a\n');
  writeFileSync(join(parent, 'sentinel', 'sub', 'b.txt'), 'sentinel b\n');
  symlinkSync('a.txt', join(parent, 'sentinel', 'link'));
  writeFileSync(join(parent, 'outside.txt'), 'outside\n');
}

/** Everything under `dir` except `skip` (paths relative to `dir`): type, mode, owner, nlink, size, mtime, content/target. */
function snapshot(dir: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = rel ? join(dir, rel) : dir;
    const st = lstatSync(abs);
    let what = '';
    if (st.isSymbolicLink()) what = 'l:' + readlinkSync(abs);
    else if (st.isFile()) what = 'f:' + createHash('sha256').update(readFileSync(abs)).digest('hex');
    else if (st.isDirectory()) what = 'd';
    else what = 'o:' + st.mode;
    // the parent itself changes when the target is recreated; its entries are compared one by one
    out.push(rel === '' ? '(root)' : `${rel} ${what} ${st.mode} ${st.uid}:${st.gid} n${st.nlink} s${st.size} m${st.mtimeMs}`);
    if (st.isDirectory()) for (const c of readdirSync(abs).sort()) if (join(rel, c) !== skip) walk(join(rel, c));
  };
  walk('');
  return out;
}

/** A fresh target with "lower layer" content that points out of it. */
function freshTarget(): void {
  rmSync(TARGET(), { recursive: true, force: true });
  mkdirSync(join(TARGET(), 'pre-dir'), { recursive: true });
  symlinkSync('../sentinel', join(TARGET(), 'pre-link'));
  symlinkSync(join(parent, 'sentinel'), join(TARGET(), 'pre-abs'));
  symlinkSync('../outside.txt', join(TARGET(), 'pre-file'));
}

// ---- generators ----

const nameParts = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom('a', 'b', 'd', 'x.txt', '..', '.', '', 'pre-link', 'pre-abs', 'pre-file', 'pre-dir', 'esc', 'sub', 'a.txt', 'link', 'sentinel', 'outside.txt', '.wh.a', '.wh.pre-link', '.wh..wh..opq', '.wh..wh.meta', '.wh...', '\u00e9', 'x'.repeat(120)),
    fc.constant('ABS'),
    fc.string({ maxLength: 5 }),
  );

const pathArb: fc.Arbitrary<string> = fc
  .tuple(fc.boolean(), fc.array(nameParts(), { minLength: 1, maxLength: 4 }))
  .map(([abs, parts]) => (abs ? '/' : '') + parts.join('/'));

const linkArb: fc.Arbitrary<string> = fc.oneof(
  pathArb,
  fc.constantFrom('..', '../..', '../sentinel', '../sentinel/a.txt', '../outside.txt', '/', 'ABS/sentinel', 'ABS/sentinel/a.txt', 'ABS/outside.txt', 'pre-link/a.txt', 'esc/a.txt', '/proc/self/root', ''),
);

const rawEntryArb: fc.Arbitrary<RawEntry> = fc.record(
  {
    name: pathArb,
    type: fc.constantFrom('0', '0', '5', '5', '2', '2', '1', '1', '3', '4', '6', '7', 'x', 'g', 'L', 'K', 'S', 'Z', '\0'),
    link: linkArb,
    body: fc.uint8Array({ maxLength: 700 }).map((u) => Buffer.from(u)),
    pax: fc.array(
      fc.tuple(
        fc.constantFrom('path', 'linkpath', 'size', 'mtime', 'uid', 'gid', 'uname', 'SCHILY.xattr.user.x', 'SCHILY.xattr.trusted.overlay.opaque', 'SCHILY.xattr.security.capability', 'GNU.sparse.map', 'comment', 'atime', ''),
        fc.oneof(linkArb, fc.constantFrom('-1', '1e309', '99999999999999999999', '0.5', 'NaN', '', '12abc', '9007199254740993', 'y')),
      ),
      { maxLength: 2 },
    ),
    mode: fc.oneof(fc.constant(0o644), fc.constant(0o755), fc.nat(0o7777), fc.constant(0o4755)),
  },
  { requiredKeys: ['name', 'type'] },
);

const writerEntryArb: fc.Arbitrary<{ e: TarEntry; body?: Buffer }> = fc
  .record({
    path: fc.array(fc.constantFrom('a', 'b', 'c', 'dir', 'f.txt', '.wh.x', '.wh..wh..opq', 'l', '\u00fc'), { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
    type: fc.constantFrom('file', 'dir', 'symlink', 'hardlink', 'fifo', 'char'),
    body: fc.uint8Array({ maxLength: 1500 }),
    mode: fc.nat(0o7777),
    linkname: fc.constantFrom('a', 'dir/f.txt', '../x', '/etc/passwd', 'b'),
    xattr: fc.option(fc.uint8Array({ maxLength: 10 }), { nil: undefined }),
  })
  .map((r) => {
    const type = r.type as TarEntry['type'];
    const body = type === 'file' ? Buffer.from(r.body) : undefined;
    const e: TarEntry = { path: r.path, type, mode: r.mode, uid: 0, gid: 0, size: body?.length ?? 0, mtime: 1700000000 };
    if (type === 'symlink' || type === 'hardlink') e.linkname = r.linkname;
    if (type === 'char') {
      e.devmajor = 0;
      e.devminor = 0;
    }
    if (r.xattr) e.xattrs = new Map([['user.fuzz', Buffer.from(r.xattr)]]);
    return body ? { e, body } : { e };
  });

type TarSource = { kind: 'fixture'; index: number } | { kind: 'raw'; entries: RawEntry[] } | { kind: 'writer'; entries: { e: TarEntry; body?: Buffer }[] };

const sourceArb: fc.Arbitrary<TarSource> = fc.oneof(
  { weight: 2, arbitrary: fc.nat().map((index) => ({ kind: 'fixture' as const, index })) },
  { weight: 5, arbitrary: fc.array(rawEntryArb, { minLength: 1, maxLength: 6 }).map((entries) => ({ kind: 'raw' as const, entries })) },
  { weight: 3, arbitrary: fc.array(writerEntryArb, { minLength: 1, maxLength: 6 }).map((entries) => ({ kind: 'writer' as const, entries })) },
);

const FIELDS = { name: [0, 100], mode: [100, 8], uid: [108, 8], size: [124, 12], mtime: [136, 12], chksum: [148, 8], type: [156, 1], link: [157, 100], magic: [257, 8], devmajor: [329, 8], prefix: [345, 155] } as const;
type Field = keyof typeof FIELDS;

type ByteMutation =
  | { kind: 'flip'; header: number; offset: number; xor: number; fix: boolean }
  | { kind: 'field'; header: number; field: Field; value: string; fix: boolean }
  | { kind: 'base256'; header: number; bytes: number[] }
  | { kind: 'truncate'; at: number }
  | { kind: 'dupBlock'; block: number; count: number; to: number }
  | { kind: 'random'; at: number; bytes: number[] };

const mutationArb: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), header: fc.nat(), offset: fc.nat(511), xor: fc.integer({ min: 1, max: 255 }), fix: fc.boolean() }),
  fc.record({
    kind: fc.constant('field' as const),
    header: fc.nat(),
    field: fc.constantFrom(...(Object.keys(FIELDS) as Field[])),
    value: fc.oneof(linkArb, fc.constantFrom('77777777777', '-1', '0', '   ', '\0', '00000001000', '7777777777777', 'x', '1', '5', '2', 'L', 'ustar ', '8')),
    fix: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('base256' as const), header: fc.nat(), bytes: fc.array(fc.nat(255), { minLength: 12, maxLength: 12 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('dupBlock' as const), block: fc.nat(), count: fc.integer({ min: 1, max: 3 }), to: fc.nat() }),
  fc.record({ kind: fc.constant('random' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 16 }) }),
);

function headerOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + 512 <= b.length; at += 512) if (b.toString('latin1', at + 257, at + 262) === 'ustar') out.push(at);
  return out.length ? out : [0];
}

function applyMutations(input: Buffer, ops: readonly ByteMutation[]): Buffer {
  let b = Buffer.from(input);
  for (const op of ops) {
    if (b.length === 0) break;
    const hs = headerOffsets(b);
    switch (op.kind) {
      case 'flip': {
        const h = hs[op.header % hs.length]!;
        const at = h + op.offset;
        if (at < b.length) b[at]! ^= op.xor;
        if (op.fix && h + 512 <= b.length) fixChecksum(b, h);
        break;
      }
      case 'field': {
        const h = hs[op.header % hs.length]!;
        if (h + 512 > b.length) break;
        const [off, len] = FIELDS[op.field];
        setString(b, h + off, len, op.value.replace('ABS', parent));
        if (op.fix) fixChecksum(b, h);
        break;
      }
      case 'base256': {
        const h = hs[op.header % hs.length]!;
        if (h + 512 > b.length) break;
        Buffer.from([0x80 | op.bytes[0]!, ...op.bytes.slice(1)]).copy(b, h + 124);
        fixChecksum(b, h);
        break;
      }
      case 'truncate':
        b = b.subarray(0, op.at % (b.length + 1));
        break;
      case 'dupBlock': {
        const n = Math.floor(b.length / 512);
        if (n === 0) break;
        const from = (op.block % n) * 512;
        const piece = b.subarray(from, from + op.count * 512);
        const to = (op.to % n) * 512;
        b = Buffer.concat([b.subarray(0, to), piece, b.subarray(to)]);
        break;
      }
      case 'random': {
        const at = op.at % b.length;
        Buffer.from(op.bytes).copy(b, at);
        break;
      }
    }
  }
  return b;
}

async function buildTar(src: TarSource): Promise<Buffer> {
  if (src.kind === 'fixture') return FIXTURES.length ? FIXTURES[src.index % FIXTURES.length]! : Buffer.alloc(1024);
  if (src.kind === 'raw') {
    return rawTar(src.entries.map((e) => ({ ...e, name: e.name.replace('ABS', parent), ...(e.link !== undefined ? { link: e.link.replace('ABS', parent) } : {}), ...(e.pax ? { pax: e.pax.map(([k, v]) => [k, v.replace('ABS', parent)] as [string, string]) } : {}) })));
  }
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    w.stream.on('data', (c: Buffer) => chunks.push(c));
    w.stream.on('end', resolve);
    w.stream.on('error', reject);
  });
  try {
    for (const { e, body } of src.entries) await w.add(e, body);
    await w.finish();
  } catch (err) {
    // the writer may refuse an entry; what it wrote so far is still a fine seed
    if (!(err instanceof ContentError)) throw err;
    w.stream.destroy();
    return Buffer.concat([...chunks, Buffer.alloc(1024)]);
  }
  await done;
  return Buffer.concat(chunks);
}

async function timeBox<T>(what: string, p: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort(new Error('time box'));
      reject(new Error(`${what} did not finish within ${TIME_BOX_MS} ms`));
    }, TIME_BOX_MS);
  });
  try {
    return await Promise.race([p(ac.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describeError(e: unknown): string {
  return (e as Error)?.stack ?? String(e);
}

describe('fuzz: layer tar reader and extractor', () => {
  let before: string[] = [];
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'tsbuild-fuzz-tar-'));
    parent = join(work, 'p');
    mkdirSync(parent);
    buildSentinel();
    before = snapshot(parent, 'target');
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('has fixtures', () => {
    expect(FIXTURES.length).toBeGreaterThan(5);
  });

  const caseArb = fc.record({
    source: sourceArb,
    // a third of the cases keep the tar well-formed, so the extractor's path handling gets them whole
    mutations: fc.oneof({ weight: 1, arbitrary: fc.constant([] as ByteMutation[]) }, { weight: 2, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }),
    whiteouts: fc.constantFrom('apply' as const, 'overlay' as const),
    ignoreOwnership: fc.boolean(),
    chunk: fc.integer({ min: 1, max: 2048 }),
  });

  it(
    'extractLayer never writes outside the target and fails only with ContentErrors',
    async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          const tar = applyMutations(await buildTar(c.source), c.mutations);
          freshTarget();
          try {
            await timeBox('extractLayer', (signal) => extractLayer(chunked(tar, c.chunk), TARGET(), { whiteouts: c.whiteouts, ignoreOwnership: c.ignoreOwnership, signal }));
          } catch (e) {
            if (!(e instanceof ContentError)) throw new Error(`extractLayer threw a non-ContentError: ${describeError(e)}`);
            assertNoInternalCause(e, 'extractLayer');
          }
          const after = snapshot(parent, 'target');
          expect(after).toEqual(before);
        }),
        fuzzParams(500, 0.5),
      );
    },
    fuzzTimeout(120_000),
  );

  it(
    'readTar yields entries or fails with a ContentError',
    async () => {
      await fc.assert(
        fc.asyncProperty(sourceArb, fc.array(mutationArb, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 4096 }), async (src, muts, chunk) => {
          const tar = applyMutations(await buildTar(src), muts);
          try {
            await timeBox('readTar', async () => {
              for await (const { entry, body } of readTar(chunked(tar, chunk))) {
                expect(typeof entry.path).toBe('string');
                expect(Number.isSafeInteger(entry.size) && entry.size >= 0).toBe(true);
                let n = 0;
                for await (const c of body) n += (c as Buffer).length;
                expect(n).toBe(entry.type === 'file' ? entry.size : n);
              }
            });
          } catch (e) {
            if (!(e instanceof ContentError)) throw new Error(`readTar threw a non-ContentError: ${describeError(e)}`);
            assertNoInternalCause(e, 'readTar');
          }
        }),
        fuzzParams(2000, 0.5),
      );
    },
    fuzzTimeout(120_000),
  );
});

/** The bytes as a stream of `size`-byte chunks (exercises header/body boundaries). */
function chunked(b: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
  return Readable.from(parts);
}
