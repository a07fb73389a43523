/**
 * `build`: Dockerfile text + context → image. The front end (convert/) resolves the stages;
 * the solver runs them through the injected Executor/Snapshotter with the content-keyed cache.
 * Base images come only from the injected ImageResolver.
 */
import type { ContentStore } from '../src/oci/content/content-store.js';
import type { Digest } from '../src/oci/digest.js';
import type { Image } from '../src/oci/image.js';
import { withConfig } from '../src/oci/mutate.js';
import { hostPlatform, type Platform } from '../src/oci/platform.js';
import type { Compression } from '../src/oci/tar/index.js';
import type { BuildContext } from './context/context.js';
import { convertDockerfile } from './convert/convert.js';
import type { Warning } from './dockerfile/parser.js';
import { BuildError } from './exec/errors.js';
import type { Executor, ImageResolver, Snapshotter } from './exec/types.js';
import type { BuildCache, StepTrail } from './solver/cache.js';
import type { CacheMounts } from './solver/cache-mounts.js';
import type { ProgressSink } from './solver/progress.js';
import { solve } from './solver/solve.js';

/** Inputs of {@link build}. */
export interface BuildOptions {
  /** The Dockerfile's text. */
  readonly dockerfile: string;
  /** Its name, for error locations (default `Dockerfile`). */
  readonly file?: string;
  readonly context: BuildContext;
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly target?: string;
  /** Target platform (default the host's). */
  readonly platform?: Platform;
  readonly resolver: ImageResolver;
  readonly snapshotter: Snapshotter;
  readonly executor: Executor;
  /** Where layers are written. */
  readonly content: ContentStore;
  readonly cache?: BuildCache;
  /** Run every step even when the cache has it. */
  readonly noCache?: boolean;
  /** SOURCE_DATE_EPOCH in seconds: `created` of the config and history, and new layer mtimes, are clamped to it. */
  readonly sourceDateEpoch?: number;
  /** Network of RUN without `--network` (default host). */
  readonly defaultNetwork?: 'host' | 'none';
  readonly compression?: Compression;
  readonly compressionLevel?: number;
  readonly parallelism?: number;
  readonly progress?: ProgressSink;
  readonly signal?: AbortSignal;
  /** Directories of `RUN --mount=type=cache` across builds. */
  readonly cacheMounts?: CacheMounts;
  /** `--secret` values by id (in memory only; never in a layer or a cache key). */
  readonly secrets?: ReadonlyMap<string, Buffer>;
  /** Stages whose steps ignore the cache (`--no-cache-filter`). */
  readonly noCacheStages?: ReadonlySet<string>;
  /** Step key history for explaining misses. */
  readonly trail?: StepTrail;
  /** Report why each step missed the cache (progress `cache-miss` events). */
  readonly debugCache?: boolean;
  /** `--label`s added to the final image's config (they win over LABEL). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** What {@link build} produced. */
export interface BuildResult {
  /** The target stage's image (layers already in `content`; manifest and config not yet stored). */
  readonly image: Image;
  /** Manifest digest. */
  readonly digest: Digest;
  readonly warnings: readonly Warning[];
}

/**
 * Builds the target stage of a Dockerfile. Throws DockerfileError for bad Dockerfiles (before
 * anything runs) and BuildError for failing steps (naming the step, with the RUN's exit code
 * and last output lines).
 */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  const platform = opts.platform ?? hostPlatform();
  const images = new Map<string, Image>();
  const resolveConfig = async (ref: string, p: Platform, signal?: AbortSignal) => {
    let img: Image;
    try {
      img = await opts.resolver.resolve(ref, p, signal);
    } catch (e) {
      throw new BuildError('BASE_NOT_FOUND', `base image ${ref} not found`, { cause: e });
    }
    images.set(ref, img);
    return (await img.config()).config ?? {};
  };
  const conv = await convertDockerfile(
    opts.dockerfile,
    {
      ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
      ...(opts.target ? { target: opts.target } : {}),
      targetPlatform: platform,
      buildPlatform: hostPlatform(),
      file: opts.file ?? 'Dockerfile',
    },
    resolveConfig,
    opts.signal,
  );
  for (const w of conv.warnings) opts.progress?.({ kind: 'warning', message: `${w.location ? `${w.location.file ?? 'Dockerfile'}:${w.location.line}: ` : ''}${w.short}` });
  const results = await solve({
    graph: conv.graph,
    build: conv.build,
    images,
    context: opts.context,
    resolver: opts.resolver,
    snapshotter: opts.snapshotter,
    executor: opts.executor,
    content: opts.content,
    ...(opts.cache ? { cache: opts.cache } : {}),
    ...(opts.noCache ? { noCache: true } : {}),
    ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
    ...(opts.defaultNetwork ? { defaultNetwork: opts.defaultNetwork } : {}),
    ...(opts.compression ? { compression: opts.compression } : {}),
    ...(opts.compressionLevel !== undefined ? { compressionLevel: opts.compressionLevel } : {}),
    ...(opts.parallelism ? { parallelism: opts.parallelism } : {}),
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.cacheMounts ? { cacheMounts: opts.cacheMounts } : {}),
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    ...(opts.noCacheStages ? { noCacheStages: opts.noCacheStages } : {}),
    ...(opts.trail ? { trail: opts.trail } : {}),
    ...(opts.debugCache ? { debugCache: true } : {}),
  });
  const target = results.get(conv.build.target.index);
  if (!target) throw new BuildError('STEP_FAILED', `target stage ${conv.build.target.displayName} was not built`);
  let image = target.image;
  if (opts.labels && Object.keys(opts.labels).length > 0) {
    const cfg = await image.config();
    image = withConfig(image, { ...cfg, config: { ...(cfg.config ?? {}), Labels: { ...(cfg.config?.Labels ?? {}), ...opts.labels } } });
  }
  return { image, digest: await image.digest(), warnings: conv.warnings };
}
