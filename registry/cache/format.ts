/**
 * The registry build-cache format: one OCI image manifest (an artifact) per cache reference.
 *
 * ```
 * manifest  application/vnd.oci.image.manifest.v1+json, artifactType application/vnd.tsbuild.cache.v1+json
 *   config  application/vnd.tsbuild.cache.config.v1+json   → {"version":1,"records":[...]}
 *   layers  every layer blob a record names (unique, sorted by digest), with its own media type
 * ```
 *
 * A record is `{key, parent?, created, layer?: {mediaType, digest, size, diffId}}`: the step's
 * content key (the builder's cache key: op + input digests + parent key, never host paths or
 * times), the key of the filesystem it ran on, when it first ran (history `created`), and its
 * layer (absent when the step changed nothing). Records are sorted by key; the same records
 * give the same bytes. Listing the blobs as `layers` keeps them referenced, so registries do
 * not collect them and tools like `skopeo copy` move the whole cache.
 *
 * Everything read from a registry is validated here before the builder sees it: a corrupt or
 * hostile config gives ContentError INVALID_CONFIG naming the field, never a crash.
 */
import type { Descriptor } from '../../src/oci/descriptor.js';
import { isDigest, type Digest } from '../../src/oci/digest.js';
import { isLayer, MediaTypes } from '../../src/oci/media-types.js';
import type { ImageManifest } from '../../src/oci/manifest.js';
import { ContentError } from '../../src/util/errors.js';

/** `artifactType` of a cache manifest. */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.tsbuild.cache.v1+json';
/** Media type of a cache manifest's config blob (the records). */
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.tsbuild.cache.config.v1+json';
/** The config format version this code writes and reads. */
export const CACHE_CONFIG_VERSION = 1;
/** The largest cache config read (about 40 000 records). */
export const MAX_CACHE_CONFIG_BYTES = 16 << 20;
/** The most records one cache config may hold. */
export const MAX_CACHE_RECORDS = 100_000;

/** One step result in a cache config (wire form, field names as written). */
export interface CacheEntry {
  readonly key: Digest;
  readonly parent?: Digest;
  /** RFC 3339. */
  readonly created: string;
  readonly layer?: { readonly descriptor: Descriptor; readonly diffId: Digest };
}

/** https://www.rfc-editor.org/rfc/rfc3339 date-time (as Go and tsbuild write it). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function sortBy<T>(items: T[], key: (t: T) => string): T[] {
  return items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The config blob for `entries`: canonical JSON (fixed field order, records sorted by key, one record per key). */
export function encodeCacheConfig(entries: readonly CacheEntry[]): Buffer {
  const byKey = new Map<string, CacheEntry>();
  for (const e of entries) if (!byKey.has(e.key)) byKey.set(e.key, e);
  const records = sortBy([...byKey.values()], (e) => e.key).map((e) => ({
    key: e.key,
    ...(e.parent ? { parent: e.parent } : {}),
    created: e.created,
    ...(e.layer ? { layer: { mediaType: e.layer.descriptor.mediaType, digest: e.layer.descriptor.digest, size: e.layer.descriptor.size, diffId: e.layer.diffId } } : {}),
  }));
  return Buffer.from(JSON.stringify({ version: CACHE_CONFIG_VERSION, records }));
}

/** The layer blobs `entries` name: unique by digest, sorted by digest. */
export function cacheLayers(entries: readonly CacheEntry[]): Descriptor[] {
  const out = new Map<string, Descriptor>();
  for (const e of entries) {
    if (!e.layer) continue;
    const d = e.layer.descriptor;
    if (!out.has(d.digest)) out.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
  }
  return sortBy([...out.values()], (d) => d.digest);
}

/** The cache manifest bytes for a config blob and the layers it names. */
export function encodeCacheManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  const m = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  return Buffer.from(JSON.stringify(m));
}

function bad(where: string, what: string): ContentError {
  return new ContentError('INVALID_CONFIG', `${where}: ${what}`);
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 100 ? `${s.slice(0, 97)}...` : s;
}

function digestField(v: unknown, where: string, field: string): Digest {
  if (typeof v !== 'string' || !isDigest(v)) throw bad(where, `${field}: invalid digest ${show(v)}`);
  return v;
}

/**
 * Checks a cache manifest (already parsed as an image manifest) and returns it: OCI media type,
 * the cache config media type, well-formed layer descriptors.
 */
export function checkCacheManifest(m: ImageManifest, where: string): ImageManifest {
  const raw = m as ImageManifest & { artifactType?: unknown };
  if (raw.mediaType !== undefined && raw.mediaType !== MediaTypes.OciManifest) {
    throw new ContentError('INVALID_MANIFEST', `${where}: not a build cache (manifest media type ${show(raw.mediaType)})`);
  }
  if (m.config?.mediaType !== CACHE_CONFIG_MEDIA_TYPE) {
    throw new ContentError('INVALID_MANIFEST', `${where}: not a build cache (config media type ${show(m.config?.mediaType)}, want ${CACHE_CONFIG_MEDIA_TYPE})`);
  }
  if (raw.artifactType !== undefined && raw.artifactType !== CACHE_ARTIFACT_TYPE) {
    throw new ContentError('INVALID_MANIFEST', `${where}: not a build cache (artifactType ${show(raw.artifactType)})`);
  }
  return m;
}

/**
 * Parses and validates a cache config blob. `layers` are the manifest's layer descriptors:
 * every record's layer must be one of them (same digest, size and media type), so a record
 * never names a blob the registry may have collected. Throws ContentError INVALID_CONFIG.
 */
export function parseCacheConfig(bytes: Uint8Array, layers: readonly Descriptor[], where: string): CacheEntry[] {
  if (bytes.byteLength > MAX_CACHE_CONFIG_BYTES) throw bad(where, `cache config of ${bytes.byteLength} bytes exceeds the ${MAX_CACHE_CONFIG_BYTES}-byte limit`);
  let j: unknown;
  try {
    j = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new ContentError('INVALID_CONFIG', `${where}: cache config is not JSON`, { cause: e });
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw bad(where, 'cache config is not a JSON object');
  const o = j as { version?: unknown; records?: unknown };
  if (o.version !== CACHE_CONFIG_VERSION) throw bad(where, `unsupported cache config version ${show(o.version)} (this tsbuild reads version ${CACHE_CONFIG_VERSION})`);
  if (!Array.isArray(o.records)) throw bad(where, 'records is not an array');
  if (o.records.length > MAX_CACHE_RECORDS) throw bad(where, `${o.records.length} records exceed the limit of ${MAX_CACHE_RECORDS}`);
  const known = new Map(layers.map((l) => [l.digest as string, l]));
  const seen = new Set<string>();
  const out: CacheEntry[] = [];
  o.records.forEach((r: unknown, i: number) => {
    const at = `records[${i}]`;
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw bad(where, `${at} is not an object`);
    const rec = r as { key?: unknown; parent?: unknown; created?: unknown; layer?: unknown };
    const key = digestField(rec.key, where, `${at}.key`);
    if (seen.has(key)) throw bad(where, `${at}.key: duplicate key ${key}`);
    seen.add(key);
    const parent = rec.parent === undefined ? undefined : digestField(rec.parent, where, `${at}.parent`);
    if (typeof rec.created !== 'string' || rec.created.length > 64 || !RFC3339.test(rec.created) || Number.isNaN(Date.parse(rec.created))) {
      throw bad(where, `${at}.created: not an RFC 3339 time: ${show(rec.created)}`);
    }
    let layer: CacheEntry['layer'];
    if (rec.layer !== undefined) {
      const l = rec.layer as { mediaType?: unknown; digest?: unknown; size?: unknown; diffId?: unknown } | null;
      if (!l || typeof l !== 'object' || Array.isArray(l)) throw bad(where, `${at}.layer is not an object`);
      const digest = digestField(l.digest, where, `${at}.layer.digest`);
      const diffId = digestField(l.diffId, where, `${at}.layer.diffId`);
      if (typeof l.mediaType !== 'string' || !isLayer(l.mediaType)) throw bad(where, `${at}.layer.mediaType: not a layer media type: ${show(l.mediaType)}`);
      if (typeof l.size !== 'number' || !Number.isSafeInteger(l.size) || l.size < 0) throw bad(where, `${at}.layer.size: invalid size ${show(l.size)}`);
      const listed = known.get(digest);
      if (!listed) throw bad(where, `${at}.layer: blob ${digest} is not listed in the manifest's layers`);
      if (listed.size !== l.size || listed.mediaType !== l.mediaType) {
        throw bad(where, `${at}.layer: blob ${digest} is listed in the manifest as ${listed.mediaType} of ${listed.size} bytes, the record says ${l.mediaType} of ${l.size} bytes`);
      }
      layer = { descriptor: { mediaType: l.mediaType, digest, size: l.size }, diffId };
    }
    out.push({ key, ...(parent ? { parent } : {}), created: rec.created, ...(layer ? { layer } : {}) });
  });
  return out;
}
