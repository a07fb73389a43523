import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../../../src/oci/digest.js';
import type { ImageManifest } from '../../../../src/oci/manifest.js';
import { GC_ROOTS_DIR, ImageStore, shortId } from '../../../../src/oci/store/image-store.js';
import { validateImage } from '../../../../src/oci/validate.js';
import { hasCode } from '../../../../src/util/errors.js';
import { smallImage } from './fixtures.js';
import { transpileSrc } from './transpile.js';

let root: string;
let store: ImageStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tsbuild-is-'));
  store = await ImageStore.open(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function blobs(): Promise<string[]> {
  const out: string[] = [];
  for await (const d of store.content.list()) out.push(d);
  return out.sort();
}

describe('ImageStore names and ids', () => {
  it('tags with normalised names and resolves by name, id prefix, full id and manifest digest', async () => {
    const desc = await smallImage(store, 'a');
    await store.tag('busybox', desc);
    await store.tag('localhost:5000/app:v1', desc);
    const list = await store.list();
    expect(list.map((r) => r.name)).toEqual(['docker.io/library/busybox:latest', 'localhost:5000/app:v1']);
    const m = JSON.parse((await store.content.read(desc.digest)).toString()) as ImageManifest;
    expect(list[0]!.id).toBe(m.config.digest);
    expect(list[0]!.descriptor.digest).toBe(desc.digest);
    for (const q of ['busybox', 'busybox:latest', 'docker.io/library/busybox:latest', shortId(m.config.digest), m.config.digest.slice(7, 20), m.config.digest, desc.digest, `busybox@${desc.digest}`]) {
      expect((await store.resolve(q)).descriptor.digest, q).toBe(desc.digest);
    }
    const e = await errorOf(store.resolve('nosuch:tag'));
    expect(hasCode(e, 'NOT_FOUND')).toBe(true);
    expect((e as Error).message).toContain('nosuch:tag');
    expect(hasCode(await errorOf(store.resolve('0123456789ab')), 'NOT_FOUND')).toBe(true);
  });

  it('returns a valid Image whose config and layers come from the store', async () => {
    const desc = await smallImage(store, 'b', ['CMD ["/bin/sh"]']);
    await store.tag('b:1', desc);
    const { record, image } = await store.imageFor('b:1');
    expect(record.name).toBe('docker.io/library/b:1');
    await validateImage(image);
    expect(await image.digest()).toBe(desc.digest);
    expect((await image.config()).config?.Cmd).toEqual(['/bin/sh']);
    expect(await image.layers()).toHaveLength(1);
  });

  it('moving a tag leaves the old image untagged (dangling); untag removes a name', async () => {
    const a = await smallImage(store, 'a');
    const b = await smallImage(store, 'b');
    await store.tag('x:1', a);
    await store.tag('x:1', b);
    const list = await store.list();
    expect(list.map((r) => [r.name, r.descriptor.digest])).toEqual([
      ['docker.io/library/x:1', b.digest],
      ['', a.digest],
    ]);
    // re-tagging the dangling image removes its untagged record
    await store.tag('x:old', a);
    expect((await store.list()).map((r) => r.name)).toEqual(['docker.io/library/x:1', 'docker.io/library/x:old']);
    await store.untag('x:old');
    expect((await store.list()).map((r) => r.name)).toEqual(['docker.io/library/x:1']);
    expect(hasCode(await errorOf(store.untag('x:old')), 'NOT_FOUND')).toBe(true);
  });

  it('moving a tag to another manifest of the same image (same ID) leaves nothing dangling', async () => {
    const a = await smallImage(store, 'a');
    const m = JSON.parse((await store.content.read(a.digest)).toString()) as ImageManifest;
    const other = Buffer.from(JSON.stringify({ ...m, annotations: { note: 'same config, other manifest' } }));
    const b = await store.content.put(other, { mediaType: a.mediaType });
    await store.tag('x:1', a);
    await store.tag('x:1', b);
    expect((await store.list()).map((r) => [r.name, r.descriptor.digest, r.id])).toEqual([['docker.io/library/x:1', b.digest, m.config.digest]]);
  });

  it('refuses to tag a manifest that is not stored, and digest references', async () => {
    const a = await smallImage(store, 'a');
    const missing = { ...a, digest: sha256('missing') };
    expect(hasCode(await errorOf(store.tag('m:1', missing)), 'NOT_FOUND')).toBe(true);
    expect(hasCode(await errorOf(store.tag(`m@${a.digest}`, a)), 'INVALID_REFERENCE')).toBe(true);
    expect(await store.list()).toEqual([]);
  });

  it('writes images.json atomically and leaves no lock or temp file behind', async () => {
    const a = await smallImage(store, 'a');
    await store.tag('a:1', a);
    const names = await readdir(root);
    expect(names.sort()).toEqual(['blobs', 'images.json', 'tmp']);
    const db = JSON.parse(await readFile(join(root, 'images.json'), 'utf8')) as { images: unknown[] };
    expect(db.images).toHaveLength(1);
  });
});

describe('ImageStore gc and fsck', () => {
  it('gc keeps everything reachable from records, extraRoots and gc-roots files, deletes the rest', async () => {
    const a = await smallImage(store, 'a');
    const b = await smallImage(store, 'b');
    const c = await smallImage(store, 'c');
    const stray = await store.content.put(Buffer.from('stray'));
    await store.tag('a:1', a);
    const graphA = await store.graphDigests(a);
    const graphB = await store.graphDigests(b);
    const graphC = await store.graphDigests(c);
    expect(graphB.size).toBe(3);
    await mkdir(join(root, GC_ROOTS_DIR));
    await writeFile(join(root, GC_ROOTS_DIR, 'build-1'), `# in-progress build\n${c.digest}\n`);

    const dry = await store.gc({ dryRun: true, extraRoots: [b.digest] });
    expect(dry.removed).toEqual([stray.digest]);
    expect(await store.content.has(stray.digest)).toBe(true);

    const res = await store.gc({ extraRoots: [b.digest] });
    expect(res.removed).toEqual([stray.digest]);
    expect(res.bytes).toBe(5);

    await rm(join(root, GC_ROOTS_DIR, 'build-1'));
    const res2 = await store.gc();
    expect(new Set(res2.removed)).toEqual(new Set([...graphB, ...graphC]));
    expect(await blobs()).toEqual([...graphA].sort());
  });

  it('gc spares blobs written under a live lease, and drops leases of dead processes', async () => {
    const lease = await store.lease();
    const stray = await store.content.put(Buffer.from('in progress'));
    expect((await store.gc()).removed).toEqual([]);
    await lease.release();
    expect((await store.gc()).removed).toEqual([stray.digest]);
    await writeFile(join(root, 'leases', '999999999-dead'), JSON.stringify({ pid: 999999999, started: 0 }));
    const old = await store.content.put(Buffer.from('old stray'));
    expect((await store.gc()).removed).toEqual([old.digest]);
    expect(await readdir(join(root, 'leases'))).toEqual([]);
  });

  it('fsck reports corrupt blobs and missing referenced blobs, and removes dead temp files', async () => {
    const a = await smallImage(store, 'a');
    await store.tag('a:1', a);
    expect(await store.fsck()).toEqual({ checked: 3, bad: [] });
    const m = JSON.parse((await store.content.read(a.digest)).toString()) as ImageManifest;
    const layer = m.layers[0]!.digest;
    await writeFile(store.content.path(m.config.digest), '{"tampered":true}');
    await rm(store.content.path(layer));
    await writeFile(join(root, 'tmp', 'blob-999999999-deadbeef'), 'partial');
    const res = await store.fsck();
    expect(res.checked).toBe(2);
    expect(res.bad.find((b) => b.digest === m.config.digest)?.problem).toMatch(/digest|bytes/);
    expect(res.bad.find((b) => b.digest === layer)?.problem).toContain('missing, referenced by');
    expect(res.bad.find((b) => b.digest === layer)?.problem).toContain('docker.io/library/a:1');
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });
});

describe('ImageStore across processes', () => {
  let lib: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    lib = await transpileSrc();
  });
  afterAll(async () => {
    await lib?.cleanup();
  });

  function hammer(storeRoot: string, desc: unknown, worker: number, n: number): Promise<{ code: number | null; err: string }> {
    const script = `
      const { ImageStore } = await import(${JSON.stringify(join(lib.dir, 'src/oci/store/image-store.js'))});
      const s = await ImageStore.open(${JSON.stringify(storeRoot)});
      const desc = ${JSON.stringify(desc)};
      for (let i = 0; i < ${n}; i++) await s.tag('w${worker}/img:' + i, desc);
    `;
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    return new Promise((res) => p.on('close', (code) => res({ code, err })));
  }

  it('four processes tagging concurrently lose no update', async () => {
    const a = await smallImage(store, 'a');
    const n = 25;
    const results = await Promise.all([0, 1, 2, 3].map((w) => hammer(root, a, w, n)));
    for (const r of results) {
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
    }
    const names = (await store.list()).map((r) => r.name);
    expect(names).toHaveLength(4 * n);
    for (let w = 0; w < 4; w++) for (let i = 0; i < n; i++) expect(names).toContain(`docker.io/w${w}/img:${i}`);
    expect((await readdir(root)).filter((x) => x.includes('lock') || x.startsWith('.images'))).toEqual([]);
  });

  it('a lock left by a dead process is broken', async () => {
    await writeFile(join(root, 'images.lock'), JSON.stringify({ pid: 999999999, host: (await import('node:os')).hostname(), token: 'dead' }));
    const a = await smallImage(store, 'a');
    await store.tag('after:dead', a);
    expect((await store.list()).map((r) => r.name)).toEqual(['docker.io/library/after:dead']);
  });
});
