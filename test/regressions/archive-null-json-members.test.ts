/**
 * Regression (found by test/fuzz/archive.fuzz.test.ts, FUZZ_SEED=11, counterexample: the
 * index.json of a docker-archive replaced by `null`): reading an archive whose metadata members
 * hold JSON `null`, scalars or null list items threw a TypeError ("Cannot read properties of
 * null") instead of a ContentError, so `tsbuild load` reported an internal error.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readArchiveStream } from '../../src/oci/archive/read.js';
import { ImageStore } from '../../src/oci/store/image-store.js';
import { TarWriter } from '../../src/oci/tar/index.js';
import { ContentError } from '../../src/util/errors.js';

let root: string;
let store: ImageStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tsbuild-reg-'));
  store = await ImageStore.open(join(root, 's'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    w.stream.on('data', (c: Buffer) => chunks.push(c));
    w.stream.on('end', resolve);
    w.stream.on('error', reject);
  });
  for (const [path, text] of Object.entries(files)) {
    const body = Buffer.from(text);
    await w.add({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }, body);
  }
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

const cases: Record<string, Record<string, string>> = {
  'index.json is null': { 'oci-layout': '{"imageLayoutVersion":"1.0.0"}', 'index.json': 'null' },
  'index.json is a number': { 'index.json': '2' },
  'oci-layout is null': { 'oci-layout': 'null', 'index.json': '{"schemaVersion":2,"manifests":[]}' },
  'manifest.json lists null beside index.json': { 'index.json': '{"schemaVersion":2,"manifests":[]}', 'manifest.json': '[null, {"Config": "x", "RepoTags": 7}]' },
  'legacy manifest.json is null': { 'manifest.json': 'null' },
  'legacy manifest.json lists null': { 'manifest.json': '[null]' },
  'legacy layer path is not a string': { 'manifest.json': '[{"Config":"c.json","Layers":[1]}]', 'c.json': '{}' },
  'legacy config is null': { 'manifest.json': '[{"Config":"c.json","Layers":[]}]', 'c.json': 'null' },
};

describe('archives with null or scalar JSON members', () => {
  for (const [name, files] of Object.entries(cases)) {
    it(`${name}: ContentError, store untouched`, async () => {
      const tar = await tarOf(files);
      let err: unknown;
      let loaded = 0;
      try {
        loaded = (await readArchiveStream(Readable.from([tar]), store.content)).images.length;
      } catch (e) {
        err = e;
      }
      if (err === undefined) expect(loaded).toBe(0);
      else expect(err).toBeInstanceOf(ContentError);
      expect(await readdir(join(root, 's', 'tmp'))).toEqual([]);
      const blobs: string[] = [];
      for await (const d of store.content.list()) blobs.push(d);
      expect(blobs).toEqual([]);
    });
  }
});
