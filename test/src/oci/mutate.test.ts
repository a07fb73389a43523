import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, sha256, type Digest } from '../../../src/oci/digest.js';
import { emptyImage } from '../../../src/oci/empty.js';
import type { Image, Layer } from '../../../src/oci/image.js';
import { MediaTypes, type MediaType } from '../../../src/oci/media-types.js';
import { appendLayers, withConfig, withFlavour, withManifestAnnotations } from '../../../src/oci/mutate.js';
import { layerFromCore } from '../../../src/oci/partial.js';
import { validateImage } from '../../../src/oci/validate.js';
import { ContentError } from '../../../src/util/errors.js';
import { readAll, readableFrom } from '../../../src/util/streams.js';
import { makeTempDir, removeTempDirs, run } from '../../helpers/tools.js';

const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

/** A layer whose byte accessors throw: proves mutation never reads layer bytes. */
function metaLayer(n: number, mediaType: MediaType = MediaTypes.OciLayerGzip): Layer {
  const digest = sha256(`blob ${n}`);
  const boom = async (): Promise<never> => {
    throw new Error(`layer ${n} bytes were read`);
  };
  return {
    digest: async () => digest,
    diffId: async () => sha256(`tar ${n}`),
    size: async () => 100 + n,
    mediaType: async () => mediaType,
    descriptor: boom,
    compressed: boom,
    uncompressed: boom,
  };
}

/** An Image whose every accessor records that it was called. */
function spy(base: Image, calls: string[]): Image {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(base) as (keyof Image)[]) {
    out[k] = (...args: unknown[]) => {
      calls.push(k);
      return (base[k] as (...a: unknown[]) => unknown)(...args);
    };
  }
  return out as unknown as Image;
}

const json = async (b: Promise<Uint8Array>): Promise<Record<string, any>> => JSON.parse(Buffer.from(await b).toString('utf8'));

afterAll(removeTempDirs);

describe('emptyImage', () => {
  it('is a reproducible OCI image with no layers', async () => {
    const a = emptyImage(PLATFORM);
    const b = emptyImage(PLATFORM);
    expect(await a.digest()).toBe(await b.digest());
    expect(await a.mediaType()).toBe(MediaTypes.OciManifest);
    expect(await json(a.rawConfig())).toEqual({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } });
    const m = await a.manifest();
    expect(m).toEqual({
      schemaVersion: 2,
      mediaType: MediaTypes.OciManifest,
      config: { mediaType: MediaTypes.OciConfig, digest: sha256(await a.rawConfig()), size: (await a.rawConfig()).length },
      layers: [],
    });
    expect(await a.layers()).toEqual([]);
    await validateImage(a);
  });

  it('records the platform, including variant and os.version', async () => {
    const img = emptyImage({ os: 'windows', architecture: 'arm64', variant: 'v8', 'os.version': '10.0.1' });
    expect(await img.config()).toMatchObject({ os: 'windows', architecture: 'arm64', variant: 'v8', 'os.version': '10.0.1' });
    expect(await img.digest()).not.toBe(await emptyImage(PLATFORM).digest());
  });
});

describe('appendLayers', () => {
  it('is lazy: nothing of the base is read until an accessor is called', async () => {
    const calls: string[] = [];
    const img = appendLayers(spy(emptyImage(PLATFORM), calls), { layer: metaLayer(1) });
    expect(calls).toEqual([]);
    await img.digest();
    expect(calls.sort()).toEqual(['config', 'layers', 'manifest']);
    await Promise.all([img.manifest(), img.rawConfig(), img.layers()]);
    expect(calls).toHaveLength(3);
  });

  it('adds descriptors, diff ids and history without reading layer bytes', async () => {
    const base = emptyImage(PLATFORM);
    const l1 = metaLayer(1);
    const l2 = metaLayer(2, MediaTypes.OciLayer);
    const img = appendLayers(base, { layer: l1, history: { created_by: 'RUN one', created: '2024-01-02T03:04:05Z' } }, { layer: l2 });
    const m = await img.manifest();
    expect(m.layers).toEqual([
      { mediaType: MediaTypes.OciLayerGzip, digest: sha256('blob 1'), size: 101 },
      { mediaType: MediaTypes.OciLayer, digest: sha256('blob 2'), size: 102 },
    ]);
    const cfg = await img.config();
    expect(cfg.rootfs.diff_ids).toEqual([sha256('tar 1'), sha256('tar 2')]);
    expect(cfg.history).toEqual([{ created_by: 'RUN one', created: '2024-01-02T03:04:05Z' }, {}]);
    expect(m.config.digest).toBe(sha256(await img.rawConfig()));
    expect(await img.digest()).toBe(sha256(await img.rawManifest()));
    expect(await img.layers()).toEqual([l1, l2]);
    expect(await img.layerByDigest(sha256('blob 2'))).toBe(l2);
    expect(await img.layerByDiffId(sha256('tar 1'))).toBe(l1);
    await expect(img.layerByDigest(sha256('x'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await validateImage(img);
    // the base is untouched
    expect((await base.manifest()).layers).toEqual([]);
  });

  it('appending in two steps equals appending at once', async () => {
    const base = emptyImage(PLATFORM);
    const once = appendLayers(base, { layer: metaLayer(1) }, { layer: metaLayer(2) });
    const twice = appendLayers(appendLayers(base, { layer: metaLayer(1) }), { layer: metaLayer(2) });
    expect(await twice.digest()).toBe(await once.digest());
  });

  it('returns the base itself when nothing is added', () => {
    const base = emptyImage(PLATFORM);
    expect(appendLayers(base)).toBe(base);
  });

  it('keeps other config fields and manifest annotations of the base', async () => {
    const base = withManifestAnnotations(
      withConfig(emptyImage(PLATFORM), {
        architecture: 'amd64',
        os: 'linux',
        created: '2020-01-01T00:00:00Z',
        config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: [] },
        docker_version: '24.0',
      }),
      { 'org.example': 'x' },
    );
    const img = appendLayers(base, { layer: metaLayer(3) });
    const cfg = await img.config();
    expect(cfg.config).toEqual({ Env: ['PATH=/bin'], Cmd: ['sh'] });
    expect(cfg.docker_version).toBe('24.0');
    expect(cfg.created).toBe('2020-01-01T00:00:00Z');
    expect((await img.manifest()).annotations).toEqual({ 'org.example': 'x' });
  });
});

describe('withConfig / withManifestAnnotations', () => {
  it('withConfig replaces the config and keeps layers', async () => {
    const base = appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1) });
    const cfg = { ...(await base.config()), config: { User: 'nobody' } };
    const img = withConfig(base, cfg);
    cfg.config.User = 'root'; // the caller's object is copied
    expect((await img.config()).config).toEqual({ User: 'nobody' });
    expect((await img.manifest()).layers).toEqual((await base.manifest()).layers);
    expect(await img.configName()).not.toBe(await base.configName());
    await validateImage(img);
  });

  it('config() hands out copies', async () => {
    const img = emptyImage(PLATFORM);
    (await img.config()).os = 'plan9';
    expect((await img.config()).os).toBe('linux');
  });

  it('withManifestAnnotations merges, keeps the config bytes, and later values win', async () => {
    const base = appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1) });
    const a = withManifestAnnotations(withManifestAnnotations(base, { k1: 'a', k2: 'b' }), { k2: 'c' });
    expect((await a.manifest()).annotations).toEqual({ k1: 'a', k2: 'c' });
    expect(Buffer.from(await a.rawConfig()).equals(Buffer.from(await base.rawConfig()))).toBe(true);
    expect(await a.layers()).toEqual(await base.layers());
    await validateImage(a);
  });
});

describe('withFlavour', () => {
  it('converts OCI to Docker and back', async () => {
    const oci = appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1) }, { layer: metaLayer(2, MediaTypes.OciLayer) });
    const docker = withFlavour(oci, 'docker');
    expect(await docker.mediaType()).toBe(MediaTypes.DockerManifest);
    const m = await docker.manifest();
    expect(m.mediaType).toBe(MediaTypes.DockerManifest);
    expect(m.config.mediaType).toBe(MediaTypes.DockerConfig);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaTypes.DockerLayer, MediaTypes.DockerUncompressedLayer]);
    expect(await Promise.all((await docker.layers()).map((l) => l.mediaType()))).toEqual([MediaTypes.DockerLayer, MediaTypes.DockerUncompressedLayer]);
    expect(await Promise.all((await docker.layers()).map((l) => l.digest()))).toEqual([sha256('blob 1'), sha256('blob 2')]);
    expect(Buffer.from(await docker.rawConfig()).equals(Buffer.from(await oci.rawConfig()))).toBe(true);
    await validateImage(docker);

    const back = withFlavour(docker, 'oci');
    expect(await back.digest()).toBe(await oci.digest());
    await validateImage(back);
  });

  it('keeps the manifest bytes when nothing changes', async () => {
    const oci = withManifestAnnotations(appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1) }), { a: 'b' });
    const same = withFlavour(oci, 'oci');
    expect(Buffer.from(await same.rawManifest()).equals(Buffer.from(await oci.rawManifest()))).toBe(true);
  });

  it('drops what Docker schema 2 cannot carry', async () => {
    const oci = withManifestAnnotations(appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1) }), { a: 'b' });
    const m = await withFlavour(oci, 'docker').manifest();
    expect(m.annotations).toBeUndefined();
    expect(Object.keys(m)).toEqual(['schemaVersion', 'mediaType', 'config', 'layers']);
  });

  it('maps foreign layers and refuses zstd for Docker', async () => {
    const foreign = appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1, MediaTypes.OciLayerNondistributableGzip) });
    expect((await withFlavour(foreign, 'docker').manifest()).layers[0]!.mediaType).toBe(MediaTypes.DockerForeignLayer);
    const zstd = appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1, MediaTypes.OciLayerZstd) });
    await expect(withFlavour(zstd, 'docker').manifest()).rejects.toThrow(/manifest\.layers\[0\]: Docker schema 2 has no media type for zstd/);
    await expect(withFlavour(zstd, 'docker').manifest()).rejects.toBeInstanceOf(ContentError);
  });
});

describe('mutated images are accepted by peer tools', () => {
  const missing = ['skopeo', 'umoci', 'tar'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  const why = missing.length ? `${missing.join(', ')} not installed` : '';
  if (why) console.warn('skip: ' + why);
  it.skipIf(!!why)('skopeo and umoci read an OCI layout of emptyImage + two real layers', async () => {
    const dir = await makeTempDir();
    const src = join(dir, 'src');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc', 'hello'), 'hello from tsbuild\n');
    await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', src, '-cf', join(dir, 'l1.tar'), 'etc']);
    await writeFile(join(src, 'second'), 'second layer\n');
    await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', src, '-cf', join(dir, 'l2.tar'), 'second']);
    const layers = await Promise.all(
      ['l1.tar', 'l2.tar'].map(async (f, i) => {
        const tar = await readFile(join(dir, f));
        const blob = i === 0 ? gzipSync(tar) : tar;
        const mediaType = i === 0 ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer;
        return { blob, layer: layerFromCore({ digest: async () => sha256(blob), size: async () => blob.length, mediaType: async () => mediaType, compressed: async () => readableFrom(blob) }, sha256(tar)) };
      }),
    );
    const img = withManifestAnnotations(
      appendLayers(emptyImage(PLATFORM), ...layers.map((l, i) => ({ layer: l.layer, history: { created_by: `layer ${i}` } }))),
      { 'org.opencontainers.image.title': 'mutate test' },
    );
    await validateImage(img, { layerContent: true });

    // === write an OCI layout by hand
    const layout = join(dir, 'layout');
    const blobsDir = join(layout, 'blobs', 'sha256');
    await mkdir(blobsDir, { recursive: true });
    const put = (d: Digest, b: Uint8Array) => writeFile(join(blobsDir, parseDigest(d).slice(7)), b);
    await put(await img.digest(), await img.rawManifest());
    await put(await img.configName(), await img.rawConfig());
    for (const l of layers) await put(await l.layer.digest(), l.blob);
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciIndex,
        manifests: [{ mediaType: MediaTypes.OciManifest, digest: await img.digest(), size: await img.size(), annotations: { 'org.opencontainers.image.ref.name': 'test' } }],
      }),
    );

    const inspect = await run('skopeo', ['inspect', `oci:${layout}:test`]);
    expect(inspect.stderr).toBe('');
    expect(inspect.code).toBe(0);
    const info = JSON.parse(inspect.stdout);
    expect(info.Digest).toBe(await img.digest());
    expect(info.Layers).toEqual(await Promise.all(layers.map((l) => l.layer.digest())));
    const copy = await run('skopeo', ['copy', `oci:${layout}:test`, `dir:${join(dir, 'copy')}`]);
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);

    const unpack = await run('umoci', ['unpack', '--image', `${layout}:test`, join(dir, 'bundle')]);
    expect(unpack.stderr + unpack.stdout).not.toMatch(/error/i);
    expect(unpack.code).toBe(0);
    expect(await readFile(join(dir, 'bundle', 'rootfs', 'etc', 'hello'), 'utf8')).toBe('hello from tsbuild\n');
    expect(await readFile(join(dir, 'bundle', 'rootfs', 'second'), 'utf8')).toBe('second layer\n');

    // the docker flavour of the same image is accepted too
    const docker = withFlavour(img, 'docker');
    await validateImage(docker);
    expect((await readAll(await (await docker.layers())[0]!.uncompressed())).equals(await readFile(join(dir, 'l1.tar')))).toBe(true);
  });
});
