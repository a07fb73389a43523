import type { ContainerConfig } from '../../src/oci/config.js';
import type { Platform } from '../../src/oci/platform.js';
import { parseInstructions } from '../dockerfile/parse-instructions.js';
import { parseDockerfile, type ParseResult, type Warning } from '../dockerfile/parser.js';
import { resolveStages, type ResolvedBuild } from './resolve.js';
import { planStages, type PlanOptions, type StageGraph } from './stages.js';

/**
 * Returns the container config of an external base image for a platform.
 * The CLI implements it with the registry/store (an ImageResolver); the
 * builder never fetches anything itself.
 */
export type BaseConfigResolver = (ref: string, platform: Platform, signal?: AbortSignal) => Promise<ContainerConfig>;

/** Everything the front end derives from a Dockerfile before execution. */
export interface ConvertResult {
  readonly parse: ParseResult;
  readonly graph: StageGraph;
  readonly build: ResolvedBuild;
  /** Parse warnings followed by build warnings (unused build-args). */
  readonly warnings: readonly Warning[];
}

/**
 * Dockerfile text → resolved plan: parse, type the instructions, plan the
 * stage graph, fetch the configs of the reachable external bases (once per
 * ref and platform, concurrently) through `resolveConfig`, and resolve every
 * reachable stage. Throws located DockerfileErrors.
 */
export async function convertDockerfile(text: string, opts: Omit<PlanOptions, 'escapeToken'>, resolveConfig: BaseConfigResolver, signal?: AbortSignal): Promise<ConvertResult> {
  const parse = parseDockerfile(text, opts.file !== undefined ? { file: opts.file } : {});
  const parsed = parseInstructions(parse.ast, opts.file !== undefined ? { file: opts.file } : {});
  const graph = planStages(parsed, { ...opts, escapeToken: parse.escapeToken });
  const configs = new Map<string, Promise<ContainerConfig>>();
  const key = (ref: string, p: Platform) => `${ref}\n${p.os}/${p.architecture}/${p.variant ?? ''}`;
  for (const i of graph.order) {
    const s = graph.stages[i]!;
    if (s.base.kind !== 'image') continue;
    const platform = s.platform ?? opts.targetPlatform;
    const k = key(s.base.ref, platform);
    if (!configs.has(k)) configs.set(k, resolveConfig(s.base.ref, platform, signal));
  }
  const settled = new Map<string, ContainerConfig>();
  await Promise.all([...configs].map(async ([k, p]) => settled.set(k, await p)));
  const build = resolveStages(graph, (ref, p) => settled.get(key(ref, p ?? opts.targetPlatform)));
  return { parse, graph, build, warnings: [...parse.warnings, ...build.warnings] };
}
