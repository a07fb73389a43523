/**
 * Lazy image mutation (ggcr pkg/v1/mutate). Every function returns at once with a new Image
 * that computes its manifest and config on first access, from the base image's accessors.
 * Layer bytes are never read: only layer digests, diff ids, sizes and media types. Bytes that
 * a mutation does not change (the config for withManifestAnnotations, the layers everywhere)
 * are passed through unchanged, so their digests stay the same.
 */
import type { Readable } from 'node:stream';
import { ContentError } from '../util/errors.js';
import { jsonBytes } from '../util/json.js';
import type { History, ImageConfig } from './config.js';
import type { Descriptor } from './descriptor.js';
import { sha256 } from './digest.js';
import type { Image, Layer } from './image.js';
import type { ImageManifest } from './manifest.js';
import { MediaTypes, isLayer, layerCompression, type MediaType } from './media-types.js';
import { configLayer, layerByDiffId, lazy, uncompressedLayer } from './partial.js';

/** Everything an image is made of, computed once. */
interface Parts {
  readonly rawManifest: Uint8Array;
  readonly manifest: ImageManifest;
  readonly rawConfig: Uint8Array;
  readonly config: ImageConfig;
  readonly layers: readonly Layer[];
}

/**
 * Serialises a config and a manifest around it: the config descriptor gets the digest and size
 * of the config bytes. `manifest` is written in its own key order (callers build it in spec order).
 */
export function assemble(manifest: Omit<ImageManifest, 'config'> & { config: Pick<Descriptor, 'mediaType'> & Partial<Descriptor> }, config: ImageConfig, layers: readonly Layer[], rawConfig?: Uint8Array): Parts {
  const cfgBytes = rawConfig ?? jsonBytes(config);
  const m: ImageManifest = {
    ...manifest,
    config: { ...manifest.config, digest: sha256(cfgBytes), size: cfgBytes.byteLength },
  };
  return { rawManifest: jsonBytes(m), manifest: m, rawConfig: cfgBytes, config, layers };
}

/**
 * An Image whose parts come from `compute`, called at most once (concurrent callers share
 * it; a failure is retried on the next call). The basis of every mutation and of emptyImage.
 */
export function computedImage(compute: () => Promise<Parts>): Image {
  const parts = lazy(compute);
  const digest = lazy(async () => sha256((await parts()).rawManifest));
  const cfgLayer = lazy(async () =>
    configLayer({ manifest: async () => (await parts()).manifest, rawConfig: async () => (await parts()).rawConfig }),
  );
  const img: Image = {
    mediaType: async () => (await parts()).manifest.mediaType ?? MediaTypes.OciManifest,
    digest,
    size: async () => (await parts()).rawManifest.byteLength,
    rawManifest: async () => (await parts()).rawManifest,
    manifest: async () => (await parts()).manifest,
    configName: async () => (await parts()).manifest.config.digest,
    rawConfig: async () => (await parts()).rawConfig,
    config: async () => structuredClone((await parts()).config),
    layers: async () => (await parts()).layers,
    layerByDigest: async (d) => {
      const p = await parts();
      const i = p.manifest.layers.findIndex((l) => l.digest === d);
      if (i !== -1) return p.layers[i] as Layer;
      if (p.manifest.config.digest === d) return cfgLayer();
      throw new ContentError('NOT_FOUND', `image ${await digest()}: no layer ${d}`);
    },
    layerByDiffId: (d) => layerByDiffId(img, d),
  };
  return img;
}

/** A layer to add with {@link appendLayers}, with its history entry (default `{}`). */
export interface Addendum {
  readonly layer: Layer;
  readonly history?: History;
}

async function layerDescriptor(l: Layer): Promise<Descriptor> {
  const [digest, size, mediaType] = await Promise.all([l.digest(), l.size(), l.mediaType()]);
  return { mediaType, digest, size };
}

/**
 * `base` with layers appended on top (ggcr mutate.Append). The config gets one diff id and one
 * history entry per added layer (the given one, or `{}`); the manifest gets each layer's
 * descriptor (media type, digest and size as the layer reports them; a layer whose media type
 * belongs to the other flavour is kept as is: use {@link withFlavour} to convert).
 * Only digest(), diffId(), size() and mediaType() of the added layers are called.
 */
export function appendLayers(base: Image, ...add: Addendum[]): Image {
  if (add.length === 0) return base;
  return computedImage(async () => {
    const [m, cfg, baseLayers] = await Promise.all([base.manifest(), base.config(), base.layers()]);
    const descs = await Promise.all(add.map((a) => layerDescriptor(a.layer)));
    const diffIds = await Promise.all(add.map((a) => a.layer.diffId()));
    const config: ImageConfig = {
      ...cfg,
      rootfs: { type: 'layers', diff_ids: [...(cfg.rootfs?.diff_ids ?? []), ...diffIds] },
      history: [...(cfg.history ?? []), ...add.map((a) => ({ ...(a.history ?? {}) }))],
    };
    return assemble({ ...m, layers: [...m.layers, ...descs] }, config, [...baseLayers, ...add.map((a) => a.layer)]);
  });
}

/**
 * `base` with its config replaced by `cfg` (ggcr mutate.ConfigFile); manifest fields and layers
 * are kept. `cfg.rootfs.diff_ids` MUST still describe the layers (validateImage checks this).
 */
export function withConfig(base: Image, cfg: ImageConfig): Image {
  const copy = structuredClone(cfg);
  return computedImage(async () => {
    const [m, layers] = await Promise.all([base.manifest(), base.layers()]);
    return assemble(m, copy, layers);
  });
}

/**
 * `base` with annotations merged into the manifest's `annotations` (ggcr mutate.Annotations);
 * values in `a` win. The config bytes and layers are unchanged.
 */
export function withManifestAnnotations(base: Image, a: Record<string, string>): Image {
  const add = { ...a };
  return computedImage(async () => {
    const [m, rawConfig, cfg, layers] = await Promise.all([base.manifest(), base.rawConfig(), base.config(), base.layers()]);
    return assemble({ ...m, annotations: { ...(m.annotations ?? {}), ...add } }, cfg, layers, rawConfig);
  });
}

/** A layer seen under another media type; bytes and digests are the base layer's. */
function retypedLayer(l: Layer, mediaType: MediaType, descriptor: Descriptor): Layer {
  const retyped: Layer = {
    digest: () => l.digest(),
    diffId: () => l.diffId(),
    size: () => l.size(),
    mediaType: async () => mediaType,
    descriptor: async () => descriptor,
    compressed: (): Promise<Readable> => l.compressed(),
    uncompressed: async () => uncompressedLayer(retyped, await l.diffId()),
  };
  return retyped;
}

const FOREIGN_OCI: ReadonlySet<string> = new Set([
  MediaTypes.OciLayerNondistributable,
  MediaTypes.OciLayerNondistributableGzip,
  MediaTypes.OciLayerNondistributableZstd,
]);

/** The layer media type in `flavour` for `mt` (same compression); throws for zstd → docker. */
function convertLayerType(mt: MediaType, flavour: 'oci' | 'docker', where: string): MediaType {
  const c = layerCompression(mt);
  if (flavour === 'docker') {
    if (c === 'zstd') throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `${where}: Docker schema 2 has no media type for zstd layers (${mt})`);
    if (FOREIGN_OCI.has(mt)) {
      if (c !== 'gzip') throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `${where}: Docker schema 2 foreign layers must be gzip (${mt})`);
      return MediaTypes.DockerForeignLayer;
    }
    if (mt === MediaTypes.DockerForeignLayer) return mt;
    if (!isLayer(mt)) return mt;
    return c === 'gzip' ? MediaTypes.DockerLayer : MediaTypes.DockerUncompressedLayer;
  }
  if (mt === MediaTypes.DockerForeignLayer) return MediaTypes.OciLayerNondistributableGzip;
  if (mt === MediaTypes.DockerLayer) return MediaTypes.OciLayerGzip;
  if (mt === MediaTypes.DockerUncompressedLayer) return MediaTypes.OciLayer;
  return mt;
}

/**
 * `base` converted to OCI or Docker schema 2 media types: the manifest, the config descriptor
 * and each layer descriptor (compression kept; Docker foreign ↔ OCI non-distributable).
 * Converting to Docker drops what schema 2 cannot carry (manifest annotations, artifactType,
 * subject, descriptor annotations); a zstd layer cannot be converted to Docker
 * (ContentError UNSUPPORTED_MEDIA_TYPE). Config and layer bytes are unchanged. When nothing
 * changes, the base's manifest bytes are kept as they are.
 */
export function withFlavour(base: Image, flavour: 'oci' | 'docker'): Image {
  return computedImage(async () => {
    const [m, rawManifest, rawConfig, cfg, layers] = await Promise.all([
      base.manifest(),
      base.rawManifest(),
      base.rawConfig(),
      base.config(),
      base.layers(),
    ]);
    const docker = flavour === 'docker';
    const manifestType = docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest;
    const configType = docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig;
    const strip = (d: Descriptor): Descriptor => {
      if (!docker) return d;
      const { annotations: _a, artifactType: _t, data: _d, platform: _p, ...rest } = d;
      return rest;
    };
    const newLayers: Descriptor[] = m.layers.map((d, i) => strip({ ...d, mediaType: convertLayerType(d.mediaType, flavour, `manifest.layers[${i}]`) }));
    const cfgDesc = strip({ ...m.config, mediaType: isConfigType(m.config.mediaType) ? configType : m.config.mediaType });
    const { annotations, artifactType, subject, ...restManifest } = m;
    const manifest: ImageManifest = docker
      ? { ...restManifest, mediaType: manifestType, config: cfgDesc, layers: newLayers }
      : {
          ...restManifest,
          mediaType: manifestType,
          ...(artifactType !== undefined ? { artifactType } : {}),
          config: cfgDesc,
          layers: newLayers,
          ...(subject !== undefined ? { subject } : {}),
          ...(annotations !== undefined ? { annotations } : {}),
        };
    const unchanged =
      (m.mediaType ?? MediaTypes.OciManifest) === manifestType &&
      JSON.stringify(m.config) === JSON.stringify(cfgDesc) &&
      JSON.stringify(m.layers) === JSON.stringify(newLayers) &&
      (!docker || (annotations === undefined && artifactType === undefined && subject === undefined));
    if (unchanged) return { rawManifest, manifest: m, rawConfig, config: cfg, layers };
    const retyped = layers.map((l, i) => {
      const d = newLayers[i] as Descriptor;
      return retypedLayer(l, d.mediaType, d);
    });
    return { rawManifest: jsonBytes(manifest), manifest, rawConfig, config: cfg, layers: retyped };
  });
}

function isConfigType(mt: string): boolean {
  return mt === MediaTypes.OciConfig || mt === MediaTypes.DockerConfig;
}
