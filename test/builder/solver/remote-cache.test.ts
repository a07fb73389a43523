/**
 * LayeredBuildCache: the planning logic around imported records (lazy blob pulls, checks,
 * local recording, export selection), with a real content store and local cache and an
 * in-memory source. The registry-backed source is tested in test/registry/cache and end to
 * end in test/integration/build/cache-registry.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileBuildCache } from '../../../builder/solver/cache.js';
import { LayeredBuildCache, type RemoteCacheRecord, type RemoteCacheSource } from '../../../builder/solver/remote-cache.js';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { sha256 } from '../../../src/oci/digest.js';
import { ContentError } from '../../../src/util/errors.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';

let img: RandomImage;
const dirs: string[] = [];
beforeAll(async () => {
  img = await randomImage({ layers: 2, layerBytes: 20_000 });
});
afterAll(async () => {
  await img?.cleanup();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** An in-memory source over the random image's blobs; counts blob reads. */
function source(records: RemoteCacheRecord[], o: { fail?: Error; corrupt?: boolean } = {}): RemoteCacheSource & { opened: string[] } {
  const opened: string[] = [];
  return {
    name: 'mem/cache:v1',
    opened,
    load: async () => {
      if (o.fail) throw o.fail;
      return records;
    },
    openBlob: async (d: Descriptor) => {
      opened.push(d.digest);
      if (o.corrupt) {
        const b = Buffer.from(await img.store.read(d.digest));
        b[10] = b[10]! ^ 0xff;
        return Readable.from([b]);
      }
      return img.store.open(d);
    },
  };
}

describe('LayeredBuildCache', () => {
  let root: string;
  let content: FileContentStore;
  let local: FileBuildCache;
  const k = (s: string) => sha256(s);
  let rec1: RemoteCacheRecord;
  let rec2: RemoteCacheRecord;
  let empty: RemoteCacheRecord;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tsbuild-remote-cache-'));
    dirs.push(root);
    content = new FileContentStore(join(root, 'blobs'));
    local = new FileBuildCache(root, content);
    rec1 = { key: k('one'), parent: k('base'), created: '2026-01-01T00:00:00Z', layer: { descriptor: img.layers[0]!, diffId: img.diffIds[0]! } };
    rec2 = { key: k('two'), parent: k('one'), created: '2026-01-01T00:00:01Z', layer: { descriptor: img.layers[1]!, diffId: img.diffIds[1]! } };
    empty = { key: k('three'), parent: k('two'), created: '2026-01-01T00:00:02Z' };
  });

  it('a remote hit pulls nothing until its fetch runs; then the blob is stored, checked and recorded locally', async () => {
    const src = source([rec1, rec2, empty]);
    const cache = new LayeredBuildCache(local, content, [src]);
    const hit = await cache.get(rec2.key);
    expect(hit?.layer).toEqual(rec2.layer);
    expect(hit?.created).toBe(rec2.created);
    expect(src.opened).toEqual([]);
    expect(await content.has(img.layers[1]!.digest)).toBe(false);
    expect(await local.get(rec2.key)).toBeUndefined();
    await hit!.fetch!();
    await hit!.fetch!();
    expect(src.opened).toEqual([img.layers[1]!.digest]);
    expect(await content.read(img.layers[1]!.digest)).toEqual(await img.store.read(img.layers[1]!.digest));
    expect(await local.get(rec2.key)).toEqual({ layer: rec2.layer, created: rec2.created });
    // a record without a layer is recorded locally at once
    expect(await cache.get(empty.key)).toEqual({ created: empty.created });
    expect(await local.get(empty.key)).toEqual({ created: empty.created });
    expect(await cache.get(k('unknown'))).toBeUndefined();
  });

  it('the local cache wins; sources are loaded once', async () => {
    let loads = 0;
    const src = source([rec1]);
    const counting: RemoteCacheSource = { ...src, load: async () => (loads++, [rec1]) };
    await local.put(rec1.key, { created: '2020-01-01T00:00:00Z' });
    const cache = new LayeredBuildCache(local, content, [counting]);
    expect((await cache.get(rec1.key))?.created).toBe('2020-01-01T00:00:00Z');
    await cache.get(k('x'));
    await cache.get(k('y'));
    expect(loads).toBe(1);
  });

  it('a source that cannot be loaded is a warning, and the build goes on without it', async () => {
    const warnings: string[] = [];
    const broken = source([rec1], { fail: new Error('manifest unknown (404 MANIFEST_UNKNOWN)') });
    const cache = new LayeredBuildCache(local, content, [broken, source([rec2])], { onWarning: (m) => warnings.push(m) });
    expect(await cache.get(rec1.key)).toBeUndefined();
    expect((await cache.get(rec2.key))?.layer).toEqual(rec2.layer);
    expect(warnings).toEqual(['importing cache from mem/cache:v1: manifest unknown (404 MANIFEST_UNKNOWN) (continuing without this cache)']);
  });

  it('a record lying about the diff id fails its fetch, and neither the blob nor a local record is kept', async () => {
    const liar: RemoteCacheRecord = { ...rec1, layer: { descriptor: img.layers[0]!, diffId: img.diffIds[1]! } };
    const cache = new LayeredBuildCache(local, content, [source([liar])]);
    const hit = await cache.get(liar.key);
    const err = await hit!.fetch!().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ContentError);
    expect((err as ContentError).message).toContain(`cached layer ${img.layers[0]!.digest} from mem/cache:v1: checking the diff id ${img.diffIds[1]}`);
    expect(await content.has(img.layers[0]!.digest)).toBe(false);
    expect(await local.get(liar.key)).toBeUndefined();
  });

  it('a lying record whose blob is already present is ignored with a warning (a miss)', async () => {
    await content.put(await img.store.open(img.layers[0]!), img.layers[0]!);
    const warnings: string[] = [];
    const liar: RemoteCacheRecord = { ...rec1, layer: { descriptor: img.layers[0]!, diffId: img.diffIds[1]! } };
    const cache = new LayeredBuildCache(local, content, [source([liar])], { onWarning: (m) => warnings.push(m) });
    expect(await cache.get(liar.key)).toBeUndefined();
    expect(warnings[0]).toMatch(/^cache record sha256:[0-9a-f]+ of mem\/cache:v1 ignored: cached layer .* checking the diff id/);
    // the blob was there before: it stays
    expect(await content.has(img.layers[0]!.digest)).toBe(true);
  });

  it('wrong bytes from a source are never stored', async () => {
    const cache = new LayeredBuildCache(local, content, [source([rec1], { corrupt: true })]);
    const hit = await cache.get(rec1.key);
    const err = await hit!.fetch!().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ContentError);
    expect((err as ContentError).code).toBe('DIGEST_MISMATCH');
    expect((err as ContentError).message).toContain(`pulling cached layer ${img.layers[0]!.digest} from mem/cache:v1`);
    expect(await content.has(img.layers[0]!.digest)).toBe(false);
  });

  it('exports: max has every used step, min only those of stages in the image; a shared step counts as in the image', async () => {
    const src = source([rec1, rec2]);
    const cache = new LayeredBuildCache(local, content, [src]);
    const r1 = (await cache.get(rec1.key))!;
    const built = { key: k('built'), rec: { created: '2026-02-02T00:00:00Z' } };
    cache.used({ key: rec1.key, parent: k('base'), record: r1, stage: 0, inImage: false });
    cache.used({ key: built.key, parent: k('other'), record: built.rec, stage: 1, inImage: true });
    cache.used({ key: k('inter'), parent: k('base'), record: { created: '2026-02-02T00:00:00Z' }, stage: 0, inImage: false });
    // the same step in the final stage
    cache.used({ key: rec1.key, parent: k('base'), record: r1, stage: 1, inImage: true });
    const max = cache.exportRecords('max');
    expect(max.map((r) => r.key)).toEqual([rec1.key, built.key, k('inter')].sort());
    expect(cache.exportRecords('min').map((r) => r.key)).toEqual([rec1.key, built.key].sort());
    expect(max.find((r) => r.key === rec1.key)).toEqual({ key: rec1.key, parent: k('base'), created: rec1.created, layer: rec1.layer });
    // a never-fetched record's blob is pulled when the export asks for it
    expect(src.opened).toEqual([]);
    const chunks: Buffer[] = [];
    for await (const c of await cache.openBlob(img.layers[0]!)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks)).toEqual(await img.store.read(img.layers[0]!.digest));
    expect(src.opened).toEqual([img.layers[0]!.digest]);
  });
});
