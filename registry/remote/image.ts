import type { Descriptor } from '../../src/oci/descriptor.js';
import type { Digest } from '../../src/oci/digest.js';
import type { Image, ImageIndex } from '../../src/oci/image.js';
import { isIndex } from '../../src/oci/media-types.js';
import { fromCompressedCore, fromIndexCore, type CompressedLayerCore } from '../../src/oci/partial.js';
import { withDigest, type Reference } from '../../src/oci/reference.js';
import { ContentError } from '../../src/util/errors.js';
import { RegistryError } from '../transport/errors.js';
import { MAX_CONFIG_BYTES, type RemoteOptions } from './options.js';
import { parseImageManifest, parseIndex } from './parse.js';
import { selectPlatform } from './pull.js';
import { Repository, type FetchedManifest } from './repository.js';
import { hostPlatform } from '../../src/oci/platform.js';

/**
 * The descriptor `ref` resolves to, by HEAD (falls back to GET when the registry omits
 * Docker-Content-Digest). Nothing else is fetched.
 */
export async function remoteHead(ref: Reference, opts: RemoteOptions = {}): Promise<Descriptor> {
  const repo = new Repository(ref, opts, ['pull']);
  try {
    return await repo.headManifest(ref.digest ?? ref.tag ?? 'latest');
  } finally {
    await repo.close();
  }
}

/** The manifest (or index) bytes and descriptor for `ref`. */
export async function remoteManifest(ref: Reference, opts: RemoteOptions = {}): Promise<FetchedManifest> {
  const repo = new Repository(ref, opts, ['pull']);
  try {
    return await repo.getManifest(ref.digest ?? ref.tag ?? 'latest');
  } finally {
    await repo.close();
  }
}

/**
 * A lazy Image backed by the registry (ggcr remote.Image). The manifest is fetched now; the
 * config and layers when asked for, each verified while streaming. When `ref` names an index,
 * the image for `opts.platform` (default: the host's) is chosen. The caller owns `opts.client`
 * if it passed one; otherwise the image keeps its own client (connections close when idle).
 */
export async function remoteImage(ref: Reference, opts: RemoteOptions = {}): Promise<Image> {
  const repo = new Repository(ref, opts, ['pull']);
  const top = await repo.getManifest(ref.digest ?? ref.tag ?? 'latest');
  if (isIndex(top.descriptor.mediaType)) {
    const idx = parseIndex(top.bytes, `index of ${repo.name}`);
    const chosen = selectPlatform(idx.manifests, opts.platform ?? hostPlatform());
    if (!chosen) throw new ContentError('NOT_FOUND', `pulling ${repo.name}: no image for the requested platform in the index`);
    return imageFrom(repo, await repo.getManifest(chosen.digest));
  }
  return imageFrom(repo, top);
}

/** A lazy ImageIndex backed by the registry; children are fetched by digest when asked for. */
export async function remoteIndex(ref: Reference, opts: RemoteOptions = {}): Promise<ImageIndex> {
  const repo = new Repository(ref, opts, ['pull']);
  const top = await repo.getManifest(ref.digest ?? ref.tag ?? 'latest');
  if (!isIndex(top.descriptor.mediaType)) {
    throw new RegistryError('UNSUPPORTED', `pulling ${repo.name}: ${top.descriptor.mediaType} is not an index`, { ref: repo.name });
  }
  return indexFrom(repo, top);
}

function indexFrom(repo: Repository, m: FetchedManifest): ImageIndex {
  const child = (d: Digest): Repository => new Repository(withDigest(repo.ref, d), { ...repo.opts, client: repo.client }, ['pull']);
  return fromIndexCore({
    mediaType: async () => m.descriptor.mediaType,
    rawManifest: async () => m.bytes,
    image: async (d) => {
      const r = child(d);
      return imageFrom(r, await r.getManifest(d));
    },
    index: async (d) => {
      const r = child(d);
      return indexFrom(r, await r.getManifest(d));
    },
  });
}

function imageFrom(repo: Repository, m: FetchedManifest): Image {
  const manifest = parseImageManifest(m.bytes, `manifest ${m.descriptor.digest} of ${repo.name}`);
  const layerCore = (l: Descriptor): CompressedLayerCore => ({
    digest: async () => l.digest,
    size: async () => l.size,
    mediaType: async () => l.mediaType,
    compressed: async () => repo.openBlob(l),
    descriptor: async () => l,
  });
  return fromCompressedCore({
    mediaType: async () => m.descriptor.mediaType,
    rawManifest: async () => m.bytes,
    rawConfig: () => repo.readBlob(manifest.config, MAX_CONFIG_BYTES),
    layerByDigest: async (d) => {
      const l = manifest.layers.find((x) => x.digest === d) ?? (manifest.config.digest === d ? manifest.config : undefined);
      if (!l) throw new ContentError('NOT_FOUND', `image ${m.descriptor.digest} of ${repo.name} has no layer ${d}`);
      return layerCore(l);
    },
  });
}
