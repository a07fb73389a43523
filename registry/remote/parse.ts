import type { Descriptor } from '../../src/oci/descriptor.js';
import { isDigest } from '../../src/oci/digest.js';
import { isImageManifest, isIndex } from '../../src/oci/media-types.js';
import type { ImageManifest, IndexManifest } from '../../src/oci/manifest.js';
import { ContentError } from '../../src/util/errors.js';

function desc(x: unknown, where: string): Descriptor {
  const d = x as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object' || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !isDigest(d.digest) || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new ContentError('INVALID_DESCRIPTOR', `${where}: invalid descriptor ${JSON.stringify(x)?.slice(0, 200)}`);
  }
  return d as Descriptor;
}

/** Parses image manifest bytes, checking the descriptors the registry client follows. */
export function parseImageManifest(bytes: Uint8Array, where: string): ImageManifest {
  const j = parseJson(bytes, where) as Partial<ImageManifest>;
  if (j.schemaVersion !== 2) throw new ContentError('INVALID_MANIFEST', `${where}: schemaVersion is not 2`);
  desc(j.config, `${where}: config`);
  if (!Array.isArray(j.layers)) throw new ContentError('INVALID_MANIFEST', `${where}: layers is not an array`);
  j.layers.forEach((l, i) => desc(l, `${where}: layers[${i}]`));
  return j as ImageManifest;
}

/** Parses index bytes, checking its descriptors. */
export function parseIndex(bytes: Uint8Array, where: string): IndexManifest {
  const j = parseJson(bytes, where) as Partial<IndexManifest>;
  if (j.schemaVersion !== 2) throw new ContentError('INVALID_MANIFEST', `${where}: schemaVersion is not 2`);
  if (!Array.isArray(j.manifests)) throw new ContentError('INVALID_MANIFEST', `${where}: manifests is not an array`);
  j.manifests.forEach((m, i) => desc(m, `${where}: manifests[${i}]`));
  return j as IndexManifest;
}

/** The descriptors a manifest node points at (index → manifests; image → config + layers). */
export function childrenOf(mediaType: string, bytes: Uint8Array, where: string): Descriptor[] {
  if (isIndex(mediaType)) return [...parseIndex(bytes, where).manifests];
  if (isImageManifest(mediaType) || mediaType.startsWith('application/vnd.oci.')) {
    const m = parseImageManifest(bytes, where);
    return [m.config, ...m.layers];
  }
  return [];
}

function parseJson(bytes: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch (e) {
    throw new ContentError('INVALID_MANIFEST', `${where}: not JSON`, { cause: e });
  }
}

/** Runs `f` over `items` with at most `limit` in flight; rejects with the first error after all started ones settle. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, f: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await f(items[i]!, i);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.e;
  return out;
}
