import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileContentStore } from '../../src/oci/content/file-store.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { sha256, type Digest } from '../../src/oci/digest.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import { hostPlatform, type Platform } from '../../src/oci/platform.js';

/** A small image written into an OCI layout directory (which is also a FileContentStore root). */
export interface RandomImage {
  /** The layout directory / store root. */
  readonly dir: string;
  readonly store: FileContentStore;
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly diffIds: readonly Digest[];
  /** Removes the directory. */
  cleanup(): Promise<void>;
}

/** Options of {@link randomImage}. */
export interface RandomImageOptions {
  /** Number of layers (default 2). */
  readonly layers?: number;
  /** Bytes of random (incompressible) content per layer (default 64 KiB). */
  readonly layerBytes?: number;
  /** Manifest flavour (default 'oci'). */
  readonly flavour?: 'oci' | 'docker';
  /** Tag recorded in index.json as org.opencontainers.image.ref.name (default 'latest'). */
  readonly tag?: string;
  /** Put the image in this directory instead of a new temp dir. */
  readonly dir?: string;
  /** Platform recorded in the config (default: the host's). */
  readonly platform?: Platform;
}

/**
 * Builds an image with N layers of random content: each layer is a tar made by the `tar`
 * CLI (sorted, numeric owner 0, mtime 0) and compressed by `gzip -n`; an OCI (or Docker
 * schema 2) config and manifest; written as an OCI image layout.
 */
export async function randomImage(opts: RandomImageOptions = {}): Promise<RandomImage> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'tsbuild-img-')));
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-img-work-'));
  const store = new FileContentStore(dir);
  const docker = opts.flavour === 'docker';
  try {
    const layers: Descriptor[] = [];
    const diffIds: Digest[] = [];
    const n = opts.layers ?? 2;
    for (let i = 0; i < n; i++) {
      const root = join(work, `l${i}`);
      await mkdir(join(root, 'data'), { recursive: true });
      await writeFile(join(root, 'data', `file-${i}.bin`), randomBytes(opts.layerBytes ?? 64 << 10));
      await writeFile(join(root, 'data', `note-${i}.txt`), `layer ${i}\n`);
      const tarPath = join(work, `l${i}.tar`);
      execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', root, '-cf', tarPath, 'data']);
      const tar = await readFile(tarPath);
      diffIds.push(sha256(tar));
      const gz = execFileSync('gzip', ['-n', '-c', tarPath], { maxBuffer: 1 << 30 });
      layers.push(await store.put(gz, { mediaType: docker ? MediaTypes.DockerLayer : MediaTypes.OciLayerGzip, digest: sha256(gz), size: gz.length }));
    }
    const p = opts.platform ?? hostPlatform();
    const cfgBytes = Buffer.from(
      JSON.stringify({
        architecture: p.architecture,
        os: p.os,
        ...(p.variant ? { variant: p.variant } : {}),
        created: '1970-01-01T00:00:00Z',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { nonce: randomBytes(8).toString('hex') } },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `random layer ${i}` })),
      }),
    );
    const config = await store.put(cfgBytes, { mediaType: docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig, digest: sha256(cfgBytes), size: cfgBytes.length });
    const mt = docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest;
    const mBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mt,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    );
    const manifest = await store.put(mBytes, { mediaType: mt, digest: sha256(mBytes), size: mBytes.length });
    const md: Descriptor = { mediaType: mt, digest: manifest.digest, size: manifest.size };
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [{ ...md, annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' } }] }),
    );
    return { dir, store, manifest: md, config, layers, diffIds, cleanup: () => rm(dir, { recursive: true, force: true }) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** An OCI layout holding an index over one random image per platform. */
export interface RandomIndex {
  readonly dir: string;
  readonly store: FileContentStore;
  /** The index descriptor (as written to index.json, without the ref annotation). */
  readonly index: Descriptor;
  /** One entry per platform, in the order given: the image and its platform. */
  readonly images: readonly { readonly platform: Platform; readonly image: RandomImage }[];
  cleanup(): Promise<void>;
}

/**
 * Builds one {@link randomImage} per platform in one layout directory and an OCI image index over
 * them (entries carry `platform`); index.json names the index with `tag` (default 'latest').
 */
export async function randomIndex(platforms: readonly Platform[], opts: Omit<RandomImageOptions, 'dir' | 'platform'> = {}): Promise<RandomIndex> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-idx-'));
  try {
    const images: { platform: Platform; image: RandomImage }[] = [];
    for (const platform of platforms) images.push({ platform, image: await randomImage({ ...opts, dir, platform }) });
    const store = new FileContentStore(dir);
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciIndex,
        manifests: images.map(({ platform, image }) => ({ ...image.manifest, platform })),
      }),
    );
    const index = await store.put(bytes, { mediaType: MediaTypes.OciIndex, digest: sha256(bytes), size: bytes.length });
    const desc: Descriptor = { mediaType: MediaTypes.OciIndex, digest: index.digest, size: index.size };
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [{ ...desc, annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' } }] }),
    );
    return { dir, store, index: desc, images, cleanup: () => rm(dir, { recursive: true, force: true }) };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
