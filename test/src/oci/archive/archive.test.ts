import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readArchive, readArchivePath } from '../../../../src/oci/archive/read.js';
import { writeArchive } from '../../../../src/oci/archive/write.js';
import { sha256 } from '../../../../src/oci/digest.js';
import type { ImageManifest } from '../../../../src/oci/manifest.js';
import { MediaTypes } from '../../../../src/oci/media-types.js';
import { ImageStore } from '../../../../src/oci/store/image-store.js';
import { TarWriter, readTar } from '../../../../src/oci/tar/index.js';
import { validateImage } from '../../../../src/oci/validate.js';
import { hasCode } from '../../../../src/util/errors.js';
import { readAll } from '../../../../src/util/streams.js';
import { smallImage } from '../store/fixtures.js';

let root: string;
let src: ImageStore;
let dst: ImageStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tsbuild-arc-'));
  src = await ImageStore.open(join(root, 'src'));
  dst = await ImageStore.open(join(root, 'dst'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function blobs(s: ImageStore): Promise<string[]> {
  const out: string[] = [];
  for await (const d of s.content.list()) out.push(d);
  return out.sort();
}

async function members(tar: Readable): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for await (const { entry, body } of readTar(tar)) m.set(entry.path, entry.type === 'file' ? await readAll(body) : Buffer.alloc(0));
  return m;
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

const file = (path: string, body: Buffer): [Parameters<TarWriter['add']>[0], Buffer] => [{ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }, body];

describe('docker-archive and OCI archive', () => {
  it('docker format holds the OCI layout plus manifest.json and repositories pointing at the same blobs', async () => {
    const a = await smallImage(src, 'a');
    const m = JSON.parse((await src.content.read(a.digest)).toString()) as ImageManifest;
    const tar = await members(writeArchive(src.content, [{ descriptor: a, names: ['docker.io/library/app:1'] }]));
    expect([...tar.keys()]).toEqual([
      'blobs',
      'blobs/sha256',
      `blobs/sha256/${m.config.digest.slice(7)}`,
      `blobs/sha256/${m.layers[0]!.digest.slice(7)}`,
      `blobs/sha256/${a.digest.slice(7)}`,
      'index.json',
      'manifest.json',
      'oci-layout',
      'repositories',
    ]);
    expect(JSON.parse(tar.get('manifest.json')!.toString())).toEqual([
      { Config: `blobs/sha256/${m.config.digest.slice(7)}`, RepoTags: ['app:1'], Layers: [`blobs/sha256/${m.layers[0]!.digest.slice(7)}`] },
    ]);
    expect(JSON.parse(tar.get('repositories')!.toString())).toEqual({ app: { '1': m.layers[0]!.digest.slice(7) } });
    for (const [p, b] of tar) if (p.startsWith('blobs/sha256/')) expect(sha256(b)).toBe(`sha256:${p.slice(13)}`);
  });

  for (const format of ['docker', 'oci'] as const) {
    it(`${format} save → load keeps the manifest digest and the names`, async () => {
      const a = await smallImage(src, 'a');
      const b = await smallImage(src, 'b');
      const tar = writeArchive(src.content, [
        { descriptor: a, names: ['docker.io/library/app:1', 'localhost:5000/app:v1'] },
        { descriptor: b, names: [] },
      ], { format });
      const res = await readArchive(tar, dst.content);
      expect(res.format).toBe(format === 'docker' ? 'docker-archive' : 'oci-archive');
      expect(res.images.map((i) => [i.descriptor.digest, i.names])).toEqual([
        [a.digest, ['docker.io/library/app:1']],
        [a.digest, ['localhost:5000/app:v1']],
        [b.digest, []],
      ]);
      expect(await blobs(dst)).toEqual(await blobs(src));
      await validateImage(await dst.image(res.images[0]!.descriptor));
    });
  }

  it('an index is archived whole; manifest.json lists the manifest for the asked platform', async () => {
    const a = await smallImage(src, 'a');
    const b = await smallImage(src, 'b');
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.OciIndex,
      manifests: [
        { ...a, platform: { os: 'linux', architecture: 'amd64' } },
        { ...b, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    }));
    const idx = await src.content.put(index, { mediaType: MediaTypes.OciIndex });
    await src.tag('multi:1', idx);
    const mb = JSON.parse((await src.content.read(b.digest)).toString()) as ImageManifest;
    const tar = await members(writeArchive(src.content, [{ descriptor: idx, names: ['docker.io/library/multi:1'] }], { platform: { os: 'linux', architecture: 'arm64' } }));
    const dm = JSON.parse(tar.get('manifest.json')!.toString()) as { Config: string; RepoTags: string[] }[];
    expect(dm).toEqual([{ Config: `blobs/sha256/${mb.config.digest.slice(7)}`, RepoTags: ['multi:1'], Layers: [`blobs/sha256/${mb.layers[0]!.digest.slice(7)}`] }]);
    const w = new TarWriter();
    const done = readArchive(w.stream, dst.content);
    for (const [p, body] of tar) if (p !== 'blobs' && p !== 'blobs/sha256') await w.add(...file(p, body));
    await w.finish();
    const res = await done;
    expect(res.images.map((i) => [i.descriptor.digest, i.names])).toEqual([[idx.digest, ['docker.io/library/multi:1']]]);
    await dst.tag('multi:1', res.images[0]!.descriptor);
    const arm = await dst.imageFor('multi:1', { os: 'linux', architecture: 'arm64' });
    expect(await arm.image.digest()).toBe(b.digest);
    const amd = await dst.imageFor('multi:1', { os: 'linux', architecture: 'amd64' });
    expect(await amd.image.digest()).toBe(a.digest);
    expect(amd.record.id).toBe(idx.digest);
  });

  it('putImage copies an Image from another store (layers streamed and verified)', async () => {
    const a = await smallImage(src, 'a');
    const img = await src.image(a);
    const d = await dst.putImage(img);
    expect(d.digest).toBe(a.digest);
    expect(await blobs(dst)).toEqual(await blobs(src));
    await validateImage(await dst.image(d));
  });

  it('reads a gzip-compressed archive file', async () => {
    const a = await smallImage(src, 'a');
    const path = join(root, 'a.tar.gz');
    await pipeline(writeArchive(src.content, [{ descriptor: a, names: ['app:1'] }]), createGzip(), createWriteStream(path));
    const res = await readArchivePath(path, dst.content);
    expect(res.images.map((i) => i.descriptor.digest)).toEqual([a.digest]);
    expect(res.images[0]!.names).toEqual(['docker.io/library/app:1']);
  });

  it('reads a classic docker-archive (<id>/layer.tar, symlinked duplicate layers, <hex>.json) storing uncompressed layers as-is', async () => {
    const a = await smallImage(src, 'a');
    const img = await src.image(a);
    const layerTar = await readAll(await (await img.layers())[0]!.uncompressed());
    const diffId = sha256(layerTar);
    const gz = gzipSync(layerTar);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId, diffId, diffId] }, config: { Cmd: ['/bin/sh'] } }));
    const cfgHex = sha256(config).slice(7);
    const w = new TarWriter();
    const done = readArchive(w.stream, dst.content);
    await w.add({ path: 'l1', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
    await w.add(...file('l1/layer.tar', layerTar));
    await w.add(...file('l1/json', Buffer.from('{}')));
    await w.add(...file('l1/VERSION', Buffer.from('1.0')));
    await w.add({ path: 'l2/layer.tar', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '../l1/layer.tar' });
    await w.add(...file('l3/layer.tar', gz));
    await w.add(...file(`${cfgHex}.json`, config));
    await w.add(...file('manifest.json', Buffer.from(JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: ['old:style'], Layers: ['l1/layer.tar', 'l2/layer.tar', 'l3/layer.tar'] }]))));
    await w.finish();
    const res = await done;
    expect(res.format).toBe('docker-archive-legacy');
    expect(res.images[0]!.names).toEqual(['docker.io/library/old:style']);
    const m = JSON.parse((await dst.content.read(res.images[0]!.descriptor.digest)).toString()) as ImageManifest;
    expect(m.mediaType).toBe(MediaTypes.DockerManifest);
    expect(m.config).toEqual({ mediaType: MediaTypes.DockerConfig, digest: sha256(config), size: config.length });
    expect(m.layers).toEqual([
      { mediaType: MediaTypes.DockerUncompressedLayer, digest: diffId, size: layerTar.length },
      { mediaType: MediaTypes.DockerUncompressedLayer, digest: diffId, size: layerTar.length },
      { mediaType: MediaTypes.DockerLayer, digest: sha256(gz), size: gz.length },
    ]);
    const loaded = await dst.image(res.images[0]!.descriptor);
    await validateImage(loaded);
    // Only the referenced blobs remain (manifest, config, two layer blobs): l1/json etc. were never stored.
    expect(await blobs(dst)).toEqual([res.images[0]!.descriptor.digest, sha256(config), diffId, sha256(gz)].sort());
  });

  it('a classic archive whose layer does not match its diff_id is refused and leaves nothing', async () => {
    const layerTar = await readAll(await (await (await src.image(await smallImage(src, 'a'))).layers())[0]!.uncompressed());
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('other')] } }));
    const w = new TarWriter();
    const done = readArchive(w.stream, dst.content);
    await w.add(...file('l1/layer.tar', layerTar));
    await w.add(...file('c.json', config));
    await w.add(...file('manifest.json', Buffer.from(JSON.stringify([{ Config: 'c.json', RepoTags: null, Layers: ['l1/layer.tar'] }]))));
    await w.finish();
    expect(hasCode(await errorOf(done), 'DIGEST_MISMATCH')).toBe(true);
    expect(await blobs(dst)).toEqual([]);
  });

  it('a blob member whose content does not match its name fails with DIGEST_MISMATCH and leaves nothing', async () => {
    const a = await smallImage(src, 'a');
    const good = await members(writeArchive(src.content, [{ descriptor: a, names: ['app:1'] }]));
    const m = JSON.parse((await src.content.read(a.digest)).toString()) as ImageManifest;
    const layerPath = `blobs/sha256/${m.layers[0]!.digest.slice(7)}`;
    const w = new TarWriter();
    const done = readArchive(w.stream, dst.content);
    for (const [p, b] of good) {
      if (p === 'blobs' || p === 'blobs/sha256') continue;
      const body = p === layerPath ? Buffer.from(b).fill(0, 100, 200) : b;
      await w.add(...file(p, body)).catch(() => {});
    }
    await w.finish().catch(() => {});
    expect(hasCode(await errorOf(done), 'DIGEST_MISMATCH')).toBe(true);
    expect(await blobs(dst)).toEqual([]);
  });

  it('an index.json naming a blob the archive lacks is refused and leaves nothing', async () => {
    const a = await smallImage(src, 'a');
    const good = await members(writeArchive(src.content, [{ descriptor: a, names: ['app:1'] }], { format: 'oci' }));
    const m = JSON.parse((await src.content.read(a.digest)).toString()) as ImageManifest;
    const w = new TarWriter();
    const done = readArchive(w.stream, dst.content);
    for (const [p, b] of good) if (p.startsWith('blobs/sha256/') && p !== `blobs/sha256/${m.layers[0]!.digest.slice(7)}`) await w.add(...file(p, b));
    await w.add(...file('index.json', good.get('index.json')!));
    await w.add(...file('oci-layout', good.get('oci-layout')!));
    await w.finish();
    const e = await errorOf(done);
    expect(hasCode(e, 'INVALID_ARCHIVE')).toBe(true);
    expect((e as Error).message).toContain(m.layers[0]!.digest);
    expect(await blobs(dst)).toEqual([]);
  });

  it('an archive with neither index.json nor manifest.json is refused', async () => {
    const w = new TarWriter();
    const done = readArchive(w.stream, dst.content);
    await w.add(...file('hello.txt', Buffer.from('hi')));
    await w.finish();
    expect(hasCode(await errorOf(done), 'INVALID_ARCHIVE')).toBe(true);
    expect(await blobs(dst)).toEqual([]);
  });
});


