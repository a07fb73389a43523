/**
 * Build cache records shared through somewhere else than the local store (a registry, through
 * the composition root): the builder defines what it needs of a cache source and a cache
 * destination, and {@link LayeredBuildCache} puts imported records behind the local cache.
 *
 * Records are keyed exactly as the local cache is (content keys of graph/op.ts: never host
 * paths or timestamps), so two machines building the same Dockerfile and context from the same
 * base get the same keys. A remote hit costs nothing until its layer's bytes are needed: the
 * record's `fetch` pulls the blob (verified by digest while it streams, then its diff id) when
 * a later step runs on top of it or the image is stored.
 */
import type { Readable } from 'node:stream';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import type { Digest } from '../../src/oci/digest.js';
import { uncompressedLayer } from '../../src/oci/partial.js';
import { ContentError, formatErrorChain } from '../../src/util/errors.js';
import type { BuildCache, CacheRecord, CacheUse } from './cache.js';

/** One step result as exported and imported. */
export interface RemoteCacheRecord {
  /** The record key (the solver's key for the step and its layer compression). */
  readonly key: Digest;
  /** The chain key of the filesystem the step ran on (informational). */
  readonly parent?: Digest;
  /** When the step first ran (RFC 3339): history `created` of the cached step. */
  readonly created: string;
  /** The step's layer; absent when the step changed nothing. */
  readonly layer?: { readonly descriptor: Descriptor; readonly diffId: Digest };
}

/**
 * Where imported records come from (`--cache-from`). `load` is called at most once per build;
 * it throws when the cache does not exist or cannot be read (the caller warns and goes on).
 */
export interface RemoteCacheSource {
  /** What the source is, for messages (e.g. the reference). */
  readonly name: string;
  /** Every record of the cache, validated (keys unique, descriptors well-formed). */
  load(signal?: AbortSignal): Promise<readonly RemoteCacheRecord[]>;
  /**
   * A new stream of a blob a record names. It MUST be verified against `desc` while it streams
   * (errors with DIGEST_MISMATCH / SIZE_MISMATCH instead of ending cleanly). The caller owns it.
   */
  openBlob(desc: Descriptor, signal?: AbortSignal): Promise<Readable>;
}

/** Where records are exported to (`--cache-to`). */
export interface RemoteCacheTarget {
  /** What the target is, for messages. */
  readonly name: string;
  /**
   * Writes `records` (replacing what the target held) with every layer blob they name; `open`
   * gives a verified stream of such a blob. Returns the descriptor of what was written.
   */
  export(records: readonly RemoteCacheRecord[], open: (desc: Descriptor) => Promise<Readable>, signal?: AbortSignal): Promise<Descriptor>;
}

/** Which step results an export carries (BuildKit's `mode`). */
export type CacheExportMode = 'min' | 'max';

/** Options of {@link LayeredBuildCache}. */
export interface LayeredBuildCacheOptions {
  /** Told when a source cannot be used (missing, unreadable); the build goes on without it. */
  readonly onWarning?: (message: string) => void;
  readonly signal?: AbortSignal;
}

interface Imported {
  readonly record: RemoteCacheRecord;
  readonly source: RemoteCacheSource;
}

/**
 * A {@link BuildCache} that looks in the local cache first, then in the records of remote
 * sources (loaded once, on the first lookup; the first source holding a key wins). It also
 * remembers every step result the build used, for {@link exportRecords}.
 *
 * A remote hit whose blob is already in the content store is checked (diff id) at once and
 * recorded locally; otherwise it is returned with a `fetch` that pulls the blob on first use,
 * verifies it, and records the step in the local cache (so the next build hits locally).
 */
export class LayeredBuildCache implements BuildCache {
  #records: Promise<Map<string, Imported>> | undefined;
  readonly #uses = new Map<string, CacheUse>();
  readonly #blobs = new Map<string, Promise<void>>();
  readonly #local: BuildCache;
  readonly #content: ContentStore;
  readonly #sources: readonly RemoteCacheSource[];
  readonly #opts: LayeredBuildCacheOptions;

  constructor(local: BuildCache, content: ContentStore, sources: readonly RemoteCacheSource[], opts: LayeredBuildCacheOptions = {}) {
    this.#local = local;
    this.#content = content;
    this.#sources = sources;
    this.#opts = opts;
  }

  /** The imported records by key (loads the sources on first call; failing ones are warned about and skipped). */
  imported(): Promise<ReadonlyMap<string, Imported>> {
    this.#records ??= (async () => {
      const out = new Map<string, Imported>();
      const loaded = await Promise.all(
        this.#sources.map(async (source) => {
          try {
            return { source, records: await source.load(this.#opts.signal) };
          } catch (e) {
            this.#opts.signal?.throwIfAborted();
            const chain = formatErrorChain(e);
            this.#opts.onWarning?.(`${chain.includes(source.name) ? chain : `importing cache from ${source.name}: ${chain}`} (continuing without this cache)`);
            return { source, records: [] as RemoteCacheRecord[] };
          }
        }),
      );
      for (const { source, records } of loaded) for (const record of records) if (!out.has(record.key)) out.set(record.key, { record, source });
      return out;
    })();
    return this.#records;
  }

  async get(key: Digest): Promise<CacheRecord | undefined> {
    const local = await this.#local.get(key);
    if (local || !this.#sources.length) return local;
    const hit = (await this.imported()).get(key);
    if (!hit) return undefined;
    const r = hit.record;
    if (!r.layer) {
      const rec: CacheRecord = { created: r.created };
      await this.#local.put(key, rec);
      return rec;
    }
    const rec: CacheRecord = { layer: r.layer, created: r.created, fetch: (signal) => this.#fetch(key, hit, signal) };
    if (await this.#content.has(r.layer.descriptor.digest)) {
      // present already: check the record's diff id now, and keep it locally
      try {
        await this.#fetch(key, hit, this.#opts.signal);
      } catch (e) {
        this.#opts.signal?.throwIfAborted();
        this.#opts.onWarning?.(`cache record ${key} of ${hit.source.name} ignored: ${formatErrorChain(e)}`);
        return undefined;
      }
      return { layer: r.layer, created: r.created };
    }
    return rec;
  }

  put(key: Digest, rec: CacheRecord): Promise<void> {
    return this.#local.put(key, rec);
  }

  used(u: CacheUse): void {
    // two stages may share a step (same key): it is in the image when either stage is
    const prev = this.#uses.get(u.key);
    if (!prev || (u.inImage && !prev.inImage)) this.#uses.set(u.key, u);
  }

  /**
   * The records to export: with `max` every step result the build used (all built stages),
   * with `min` only those of the stages whose layers are in the image. Sorted by key.
   */
  exportRecords(mode: CacheExportMode): RemoteCacheRecord[] {
    const out: RemoteCacheRecord[] = [];
    for (const u of this.#uses.values()) {
      if (mode === 'min' && !u.inImage) continue;
      out.push({ key: u.key, parent: u.parent, created: u.record.created, ...(u.record.layer ? { layer: { descriptor: u.record.layer.descriptor, diffId: u.record.layer.diffId } } : {}) });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * A verified stream of a layer blob an exported record names: from the content store, pulled
   * from its remote source first when it was never needed by the build.
   */
  async openBlob(desc: Descriptor): Promise<Readable> {
    if (!(await this.#content.has(desc.digest))) {
      const u = [...this.#uses.values()].find((x) => x.record.layer?.descriptor.digest === desc.digest && x.record.fetch);
      if (u?.record.fetch) await u.record.fetch(this.#opts.signal);
    }
    return this.#content.open(desc);
  }

  /** Pulls a remote record's blob into the store (once per blob), checks its diff id, records the step locally. */
  async #fetch(key: Digest, hit: Imported, signal?: AbortSignal): Promise<void> {
    const layer = hit.record.layer!;
    const d = layer.descriptor;
    let p = this.#blobs.get(d.digest);
    if (!p) {
      p = this.#pull(hit, signal);
      this.#blobs.set(d.digest, p);
      p.catch(() => this.#blobs.delete(d.digest));
    }
    await p;
    await this.#local.put(key, { layer, created: hit.record.created });
  }

  async #pull(hit: Imported, signal?: AbortSignal): Promise<void> {
    const { descriptor: d, diffId } = hit.record.layer!;
    let added = false;
    if (!(await this.#content.has(d.digest))) {
      const src = await hit.source.openBlob(d, signal);
      try {
        await this.#content.put(src, d);
      } catch (e) {
        src.destroy();
        throw new ContentError(e instanceof ContentError ? e.code : 'IO', `pulling cached layer ${d.digest} from ${hit.source.name}`, { cause: e });
      }
      added = true;
    }
    // The diff id goes into the image config: the record's claim is checked against the bytes.
    try {
      const tar = await uncompressedLayer({ compressed: () => this.#content.open(d), mediaType: async () => d.mediaType, digest: async () => d.digest }, diffId);
      for await (const _ of tar) void _;
    } catch (e) {
      if (added) await this.#content.delete(d.digest).catch(() => undefined);
      throw new ContentError(e instanceof ContentError ? e.code : 'IO', `cached layer ${d.digest} from ${hit.source.name}: checking the diff id ${diffId} its record claims`, { cause: e });
    }
  }
}
