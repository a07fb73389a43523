import type { ContentStore } from '../content/content-store.js';
import type { Descriptor } from '../descriptor.js';
import type { Digest } from '../digest.js';
import type { ImageManifest, IndexManifest } from '../manifest.js';
import { isConfig, isImageManifest, isIndex, isLayer } from '../media-types.js';
import { ContentError } from '../../util/errors.js';

/** Manifests and indexes larger than this are refused (they are read into memory). */
export const MAX_MANIFEST_BYTES = 4 << 20;

/** What a blob is, as far as graph walking is concerned. */
export type NodeKind = 'index' | 'manifest' | 'leaf';

/** The kind of node a descriptor's media type announces. */
export function nodeKind(mediaType: string): NodeKind {
  if (isIndex(mediaType)) return 'index';
  if (isImageManifest(mediaType)) return 'manifest';
  return 'leaf';
}

/**
 * The descriptors a manifest or index refers to (config + layers, or child manifests), in
 * spec order; [] for anything else (layers, configs, unknown blobs). `subject` is not
 * followed: a referrer does not own its subject. Throws NOT_FOUND when the blob is absent.
 */
export async function childDescriptors(content: ContentStore, desc: Descriptor): Promise<Descriptor[]> {
  const kind = nodeKind(desc.mediaType);
  if (kind === 'leaf') return [];
  const raw = await content.read(desc.digest, MAX_MANIFEST_BYTES);
  return childrenOf(desc, raw);
}

/** Like {@link childDescriptors} on bytes already read. */
export function childrenOf(desc: Pick<Descriptor, 'mediaType' | 'digest'>, raw: Uint8Array): Descriptor[] {
  const kind = nodeKind(desc.mediaType);
  if (kind === 'leaf') return [];
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (e) {
    throw new ContentError(kind === 'index' ? 'INVALID_MANIFEST' : 'INVALID_MANIFEST', `parsing ${kind} ${desc.digest}`, { cause: e });
  }
  if (kind === 'index') {
    const m = json as Partial<IndexManifest>;
    if (!Array.isArray(m.manifests)) throw new ContentError('INVALID_MANIFEST', `index ${desc.digest}: no manifests array`);
    return m.manifests.map((d) => checkDescriptor(d, `index ${desc.digest}`));
  }
  const m = json as Partial<ImageManifest>;
  if (!m.config || !Array.isArray(m.layers)) throw new ContentError('INVALID_MANIFEST', `manifest ${desc.digest}: missing config or layers`);
  return [checkDescriptor(m.config, `manifest ${desc.digest} config`), ...m.layers.map((d) => checkDescriptor(d, `manifest ${desc.digest} layer`))];
}

/**
 * Guesses the media type of a stored blob named only by digest (gc roots, `extraRoots`):
 * JSON with `manifests` is an index, with `config`+`layers` a manifest; else a leaf.
 */
export async function sniffDescriptor(content: ContentStore, d: Digest): Promise<Descriptor | undefined> {
  const st = await content.stat(d);
  if (!st) return undefined;
  const leaf: Descriptor = { mediaType: 'application/octet-stream', digest: d, size: st.size };
  if (st.size > MAX_MANIFEST_BYTES) return leaf;
  const raw = await content.read(d, MAX_MANIFEST_BYTES);
  if (raw[0] !== 0x7b /* { */) return leaf;
  try {
    const j = JSON.parse(raw.toString('utf8')) as { mediaType?: string; manifests?: unknown; config?: unknown; layers?: unknown };
    if (typeof j.mediaType === 'string' && (isIndex(j.mediaType) || isImageManifest(j.mediaType))) return { ...leaf, mediaType: j.mediaType };
    if (Array.isArray(j.manifests)) return { ...leaf, mediaType: 'application/vnd.oci.image.index.v1+json' };
    if (j.config && Array.isArray(j.layers)) return { ...leaf, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
  } catch {
    /* not JSON: a leaf */
  }
  return leaf;
}

/**
 * Depth-first walk from `root`, calling `visit` once per distinct digest (parents before
 * children). `onMissing` is told about absent blobs instead of throwing when given.
 */
export async function walkGraph(
  content: ContentStore,
  root: Descriptor,
  visit: (d: Descriptor, parent: Descriptor | undefined) => Promise<void> | void,
  opts: { seen?: Set<string>; onMissing?: (d: Descriptor, parent: Descriptor | undefined) => void } = {},
): Promise<void> {
  const seen = opts.seen ?? new Set<string>();
  const go = async (d: Descriptor, parent: Descriptor | undefined): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    if (opts.onMissing && !(await content.has(d.digest))) {
      opts.onMissing(d, parent);
      return;
    }
    await visit(d, parent);
    for (const c of await childDescriptors(content, d)) await go(c, d);
  };
  await go(root, undefined);
}

/**
 * Copies the graph under `root` from `src` to `dst`, blob by blob (each streamed and verified),
 * children before parents so `dst` never holds a manifest whose blobs are missing.
 * Blobs already in `dst` are skipped. Returns the number of blobs copied.
 */
export async function copyGraph(src: ContentStore, dst: ContentStore, root: Descriptor, opts: { seen?: Set<string> } = {}): Promise<number> {
  const seen = opts.seen ?? new Set<string>();
  let copied = 0;
  const go = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    if (nodeKind(d.mediaType) !== 'leaf') {
      for (const c of await childDescriptors(src, d)) await go(c);
    }
    if (await dst.has(d.digest)) return;
    await dst.put(await src.open(d), { mediaType: d.mediaType, digest: d.digest, size: d.size });
    copied++;
  };
  await go(root);
  return copied;
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const x = d as Partial<Descriptor> | null;
  if (!x || typeof x.mediaType !== 'string' || typeof x.digest !== 'string' || typeof x.size !== 'number' || x.size < 0 || !Number.isSafeInteger(x.size)) {
    throw new ContentError('INVALID_DESCRIPTOR', `${where}: invalid descriptor ${JSON.stringify(d)}`);
  }
  if (!/^sha256:[a-f0-9]{64}$/.test(x.digest)) throw new ContentError('INVALID_DIGEST', `${where}: unsupported digest ${x.digest}`);
  return x as Descriptor;
}

/** True when a descriptor's media type is a layer or config (a blob without children). */
export function isLeafBlob(mt: string): boolean {
  return isLayer(mt) || isConfig(mt);
}
