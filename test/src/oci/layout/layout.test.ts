import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readLayout, writeLayout } from '../../../../src/oci/layout/layout.js';
import { ImageStore } from '../../../../src/oci/store/image-store.js';
import { hasCode } from '../../../../src/util/errors.js';
import { smallImage } from '../store/fixtures.js';

let root: string;
let out: string;
let store: ImageStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tsbuild-lay-'));
  out = join(root, 'layout');
  store = await ImageStore.open(join(root, 'store'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('OCI image layout', () => {
  it('writes oci-layout, index.json with ref.name annotations and every blob; reads it back', async () => {
    const a = await smallImage(store, 'a');
    const index = await writeLayout(out, store.content, [{ descriptor: a, names: ['docker.io/library/app:1.0'] }]);
    expect(JSON.parse(await readFile(join(out, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(JSON.parse(await readFile(join(out, 'index.json'), 'utf8'))).toEqual(index);
    expect(index.manifests).toEqual([
      {
        mediaType: a.mediaType,
        digest: a.digest,
        size: a.size,
        annotations: { 'io.containerd.image.name': 'docker.io/library/app:1.0', 'org.opencontainers.image.ref.name': '1.0' },
      },
    ]);
    expect((await readdir(join(out, 'blobs', 'sha256'))).sort()).toEqual([...(await store.graphDigests(a))].map((d) => d.slice(7)).sort());
    expect((await readdir(out)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);

    const layout = await readLayout(out);
    expect(layout.entries).toEqual([{ descriptor: index.manifests[0], names: ['docker.io/library/app:1.0'], refName: '1.0' }]);
    expect(await layout.content.read(a.digest)).toEqual(await store.content.read(a.digest));
  });

  it('adds to an existing layout, replacing only the entry with the same name', async () => {
    const a = await smallImage(store, 'a');
    const b = await smallImage(store, 'b');
    await writeLayout(out, store.content, [{ descriptor: a, names: ['x:1'] }, { descriptor: a, names: ['x:2'] }]);
    await writeLayout(out, store.content, [{ descriptor: b, names: ['x:2'] }]);
    const layout = await readLayout(out);
    expect(layout.entries.map((e) => [e.names[0], e.descriptor.digest])).toEqual([
      ['docker.io/library/x:1', a.digest],
      ['docker.io/library/x:2', b.digest],
    ]);
  });

  it('an untagged entry has no annotations and no names; a bare-tag ref.name is kept as refName only', async () => {
    const a = await smallImage(store, 'a');
    await writeLayout(out, store.content, [{ descriptor: a }]);
    const layout = await readLayout(out);
    expect(layout.entries).toEqual([{ descriptor: { mediaType: a.mediaType, digest: a.digest, size: a.size }, names: [] }]);
  });

  it('a bare-tag ref.name wins over a copied containerd name (umoci repack copies annotations)', async () => {
    const a = await smallImage(store, 'a');
    const { entriesOf } = await import('../../../../src/oci/layout/layout.js');
    const entries = entriesOf({
      schemaVersion: 2,
      manifests: [
        { ...a, annotations: { 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': '1' } },
        { ...a, annotations: { 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': 'repacked' } },
        { ...a, annotations: { 'org.opencontainers.image.ref.name': 'localhost:5000/full/name:v2' } },
        { ...a, annotations: { 'org.opencontainers.image.ref.name': 'latest' } },
      ],
    });
    expect(entries.map((e) => e.names)).toEqual([['docker.io/library/app:1'], ['docker.io/library/app:repacked'], ['localhost:5000/full/name:v2'], []]);
  });

  it('rejects a directory that is not a layout', async () => {
    let err: unknown;
    try {
      await readLayout(root);
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'INVALID_ARCHIVE')).toBe(true);
    expect((err as Error).message).toContain(root);
  });
});
