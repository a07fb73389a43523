/**
 * `build --cache-from` / `--cache-to`: connects the builder's remote cache interfaces
 * (builder/solver/remote-cache.ts) to the registry cache (registry/cache/). The registry
 * modules load only when a cache flag is given.
 */
import type { BuildCache } from '../../../builder/solver/cache.js';
import type { ProgressSink } from '../../../builder/solver/progress.js';
import type { CacheExportMode, LayeredBuildCache } from '../../../builder/solver/remote-cache.js';
import type { ContentStore } from '../../oci/content/content-store.js';
import { formatReference, parseReference, type Reference } from '../../oci/reference.js';
import { TsbuildError, UsageError, formatErrorChain } from '../../util/errors.js';
import type { ConnectionOpts } from '../commands/pull.js';
import type { CliContext } from '../context.js';

/** One `--cache-from` / `--cache-to` value. */
export interface CacheSpec {
  readonly type: 'registry';
  readonly ref: Reference;
  /** `--cache-to` only: which step results are exported (default min, as BuildKit). */
  readonly mode: CacheExportMode;
  /** `--cache-to` only: an export failure is a warning instead of failing the build. */
  readonly ignoreError: boolean;
}

/** Keys BuildKit accepts that change nothing here (the cache is always an OCI image manifest). */
const NO_OP_KEYS = new Set(['image-manifest', 'oci-mediatypes']);

/**
 * Parses `type=registry,ref=R[,mode=min|max][,ignore-error=true]` (BuildKit's syntax; a bare
 * `R` means `type=registry,ref=R` for `--cache-from`, as buildx has it). Throws UsageError.
 */
export function parseCacheSpec(s: string, flag: '--cache-from' | '--cache-to'): CacheSpec {
  const kv = new Map<string, string>();
  if (!s.includes('=')) {
    if (flag === '--cache-to') throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ${JSON.stringify(s)}: expected type=registry,ref=REF[,mode=min|max]`);
    kv.set('type', 'registry').set('ref', s);
  } else {
    for (const part of s.split(',')) {
      const i = part.indexOf('=');
      if (i <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ${JSON.stringify(s)}: ${JSON.stringify(part)} is not KEY=VALUE`);
      kv.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
    }
  }
  const type = kv.get('type') ?? 'registry';
  if (type !== 'registry') throw new UsageError('NOT_SUPPORTED', `${flag} type=${type} is not supported (only type=registry)`);
  const refText = kv.get('ref');
  if (!refText) throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ${JSON.stringify(s)}: ref=REF is required`);
  let ref: Reference;
  try {
    ref = parseReference(refText);
  } catch (e) {
    throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ref ${JSON.stringify(refText)}`, { cause: e });
  }
  const mode = kv.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} mode ${JSON.stringify(mode)}: use min or max`);
  const ignore = kv.get('ignore-error') ?? 'false';
  if (ignore !== 'true' && ignore !== 'false') throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ignore-error ${JSON.stringify(ignore)}: use true or false`);
  for (const k of kv.keys()) {
    const allowed = k === 'type' || k === 'ref' || NO_OP_KEYS.has(k) || (flag === '--cache-to' && (k === 'mode' || k === 'ignore-error'));
    if (!allowed) throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ${JSON.stringify(s)}: unknown key ${JSON.stringify(k)}`);
  }
  if (flag === '--cache-to' && ref.digest) throw new UsageError('INVALID_ARGUMENT', `invalid ${flag} ref ${JSON.stringify(refText)}: a cache is written under a tag, not a digest`);
  return { type: 'registry', ref, mode, ignoreError: ignore === 'true' };
}

/** The build's cache, and the export to run once the build succeeded. */
export interface BuildCacheWiring {
  /** The cache to give the builder (the local one when no cache flag is given). */
  readonly cache: BuildCache;
  /** Writes every `--cache-to` cache; throws (naming the reference) unless `ignore-error=true`. */
  export(): Promise<void>;
  /** Releases registry connections. */
  close(): Promise<void>;
}

/** Options of {@link openBuildCache}. */
export interface OpenBuildCacheOptions {
  readonly from: readonly CacheSpec[];
  readonly to: readonly CacheSpec[];
  /** Warnings (a missing `--cache-from`) and the export steps go here. */
  readonly progress?: ProgressSink;
  readonly signal?: AbortSignal;
  /** The build's registry connection flags (`--tls-verify`, `--cert-dir`, `--creds`, …), as for `--push`. */
  readonly connection?: ConnectionOpts;
}

/**
 * Puts the `--cache-from` caches behind the local cache and prepares the `--cache-to`
 * exports. Registry connections use the keychain and the build's connection flags, as
 * `tsbuild pull` does.
 */
export async function openBuildCache(c: CliContext, content: ContentStore, local: BuildCache, o: OpenBuildCacheOptions): Promise<BuildCacheWiring> {
  if (!o.from.length && !o.to.length) return { cache: local, export: async () => undefined, close: async () => undefined };
  const [{ LayeredBuildCache }, { RegistryCacheSource, exportRegistryCache }, { remoteOptions }] = await Promise.all([
    import('../../../builder/solver/remote-cache.js'),
    import('../../../registry/cache/registry-cache.js'),
    import('../commands/pull.js'),
  ]);
  const optsFor = async (r: Reference) => ({ ...(await remoteOptions(c, [r.registry], o.connection ?? {})), ...(o.signal ? { signal: o.signal } : {}) });
  const sources = await Promise.all(o.from.map(async (s) => new RegistryCacheSource(s.ref, await optsFor(s.ref))));
  const cache: LayeredBuildCache = new LayeredBuildCache(local, content, sources, {
    onWarning: (message) => o.progress?.({ kind: 'warning', message }),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return {
    cache,
    async export() {
      for (const [i, s] of o.to.entries()) {
        const name = formatReference(s.ref);
        const id = `cache-export:${i}`;
        const step = `exporting cache to ${name} (mode=${s.mode})`;
        const t0 = Date.now();
        o.progress?.({ kind: 'step', id, name: step, state: 'start' });
        try {
          const records = cache.exportRecords(s.mode);
          // blobs already in a --cache-from repository of the same registry are mounted, not uploaded
          const mountFrom = o.from.filter((f) => f.ref.registry === s.ref.registry && f.ref.repository !== s.ref.repository).map((f) => f.ref.repository);
          const desc = await exportRegistryCache(s.ref, records, (d) => cache.openBlob(d), { ...(await optsFor(s.ref)), ...(mountFrom.length ? { mountFrom } : {}) });
          o.progress?.({ kind: 'output', id, name: step, stream: 'stdout', chunk: Buffer.from(`${records.length} records, manifest ${desc.digest}\n`) });
          o.progress?.({ kind: 'step', id, name: step, state: 'done', ms: Date.now() - t0 });
        } catch (e) {
          o.progress?.({ kind: 'step', id, name: step, state: 'error' });
          if (s.ignoreError) {
            o.progress?.({ kind: 'warning', message: `exporting cache to ${name} failed (ignored): ${formatErrorChain(e)}` });
            continue;
          }
          throw new TsbuildError(e instanceof TsbuildError ? e.code : 'CACHE_EXPORT_FAILED', `exporting cache to ${name}`, { cause: e });
        }
      }
    },
    async close() {
      for (const s of sources) await s.close().catch(() => undefined);
    },
  };
}
