/**
 * `build`: Dockerfile text + context → image. The front end (convert/) resolves the stages;
 * the solver runs them through the injected Executor/Snapshotter with the content-keyed cache.
 * Base images come only from the injected ImageResolver.
 */
import type { Digest } from '../src/oci/digest.js';
import type { Image } from '../src/oci/image.js';
import { withConfig } from '../src/oci/mutate.js';
import { hostPlatform, type Platform } from '../src/oci/platform.js';
import { convertDockerfile } from './convert/convert.js';
import type { Warning } from './dockerfile/parser.js';
import { BuildError } from './exec/errors.js';
import { solve, type SolveOptions } from './solver/solve.js';

/**
 * Inputs of {@link build}: the Dockerfile and front-end choices, plus everything the solver takes
 * (executor, snapshotter, cache, compression, progress, …; see {@link SolveOptions}).
 */
export interface BuildOptions extends Omit<SolveOptions, 'graph' | 'build' | 'images'> {
  /** The Dockerfile's text. */
  readonly dockerfile: string;
  /** Its name, for error locations (default `Dockerfile`). */
  readonly file?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly target?: string;
  /** Target platform (default the host's). */
  readonly platform?: Platform;
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
  const { dockerfile: _d, file: _f, buildArgs: _b, target: _t, platform: _p, labels: _l, ...solverOptions } = opts;
  const results = await solve({ ...solverOptions, graph: conv.graph, build: conv.build, images });
  const target = results.get(conv.build.target.index);
  if (!target) throw new BuildError('STEP_FAILED', `target stage ${conv.build.target.displayName} was not built`);
  let image = target.image;
  if (opts.labels && Object.keys(opts.labels).length > 0) {
    const cfg = await image.config();
    image = withConfig(image, { ...cfg, config: { ...(cfg.config ?? {}), Labels: { ...(cfg.config?.Labels ?? {}), ...opts.labels } } });
  }
  return { image, digest: await image.digest(), warnings: conv.warnings };
}
