/**
 * A build cache in a registry (format.ts): reading one (`--cache-from type=registry,ref=R`)
 * and writing one (`--cache-to type=registry,ref=R`). Structurally these are the builder's
 * RemoteCacheSource and RemoteCacheTarget; the CLI connects the two.
 */
import { Readable } from 'node:stream';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { sha256 } from '../../src/oci/digest.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import { formatReference, type Reference } from '../../src/oci/reference.js';
import type { RemoteOptions } from '../remote/options.js';
import { mapLimit, parseImageManifest } from '../remote/parse.js';
import { uploadBlob } from '../remote/push.js';
import { Repository } from '../remote/repository.js';
import { RegistryClient } from '../transport/client.js';
import { RegistryError } from '../transport/errors.js';
import { cacheLayers, checkCacheManifest, encodeCacheConfig, encodeCacheManifest, parseCacheConfig, CACHE_CONFIG_MEDIA_TYPE, MAX_CACHE_CONFIG_BYTES, type CacheEntry } from './format.js';

/**
 * The cache under a registry reference. `load` reads the manifest and its config (validated);
 * `openBlob` streams a blob verified against its descriptor (resumed with Range after a drop,
 * as every pull). Holds one registry client (tokens, connections) until {@link close}.
 */
export class RegistryCacheSource {
  readonly ref: Reference;
  readonly name: string;
  readonly #opts: RemoteOptions;
  #client: RegistryClient | undefined;

  constructor(ref: Reference, opts: RemoteOptions = {}) {
    this.ref = ref;
    this.name = formatReference(ref);
    this.#opts = opts;
  }

  #repo(signal?: AbortSignal): Repository {
    this.#client ??= this.#opts.client ?? new RegistryClient(this.ref.registry, this.#opts);
    return new Repository(this.ref, { ...this.#opts, client: this.#client, ...(signal ? { signal } : {}) }, ['pull']);
  }

  /** The cache's records. Throws RegistryError MANIFEST_UNKNOWN/NAME_UNKNOWN when the reference does not exist. */
  async load(signal?: AbortSignal): Promise<CacheEntry[]> {
    const repo = this.#repo(signal);
    const m = await repo.getManifest(this.ref.digest ?? this.ref.tag ?? 'latest', 'importing cache from');
    const where = `build cache ${this.name}`;
    const manifest = checkCacheManifest(parseImageManifest(m.bytes, where), where);
    if (manifest.config.size > MAX_CACHE_CONFIG_BYTES) {
      throw new RegistryError('INVALID_RESPONSE', `${where}: cache config of ${manifest.config.size} bytes exceeds the ${MAX_CACHE_CONFIG_BYTES}-byte limit`, { ref: this.name });
    }
    const config = await repo.readBlob(manifest.config, MAX_CACHE_CONFIG_BYTES);
    return parseCacheConfig(config, manifest.layers, where);
  }

  /** A new stream of a blob of the cache's repository, verified against `desc`. */
  async openBlob(desc: Descriptor, signal?: AbortSignal): Promise<Readable> {
    return this.#repo(signal).openBlob(desc);
  }

  /** Closes the registry client (when this source made it). */
  async close(): Promise<void> {
    if (this.#client && !this.#opts.client) await this.#client.close();
    this.#client = undefined;
  }
}

/**
 * Writes a cache to a registry reference: every layer blob the records name (skipped when the
 * repository has it, mounted from `opts.mountFrom` repositories when possible, else uploaded
 * from `open`), the config, then the manifest under the reference's tag (or digest). Returns
 * the manifest's descriptor. Errors name the reference and the registry's status.
 */
export async function exportRegistryCache(ref: Reference, entries: readonly CacheEntry[], open: (desc: Descriptor) => Promise<Readable>, opts: RemoteOptions = {}): Promise<Descriptor> {
  const repo = new Repository(ref, opts, ['pull', 'push']);
  try {
    const config = encodeCacheConfig(entries);
    const configDesc: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(config), size: config.byteLength };
    const layers = cacheLayers(entries);
    await mapLimit(layers, opts.concurrency ?? 4, (d) => uploadBlob(repo, { descriptor: d, open: () => open(d) }));
    await uploadBlob(repo, { descriptor: configDesc, open: async () => Readable.from([config]) });
    const manifest = encodeCacheManifest(configDesc, layers);
    const top = await repo.putManifest(ref.tag ?? ref.digest ?? sha256(manifest), manifest, MediaTypes.OciManifest);
    if (ref.digest && ref.digest !== top.digest) {
      throw new RegistryError('DIGEST_INVALID', `exporting cache to ${repo.name}: the cache manifest has digest ${top.digest}, not ${ref.digest}`, { ref: repo.name });
    }
    return top;
  } finally {
    await repo.close();
  }
}
