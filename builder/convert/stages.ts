import { formatPlatform, type Platform } from '../../src/oci/platform.js';
import { DockerfileError, suggest, withLocation, type SourceLocation } from '../dockerfile/errors.js';
import type { ArgInstruction, Stage } from '../dockerfile/instructions.js';
import type { ParsedDockerfile } from '../dockerfile/parse-instructions.js';
import { parseInstruction, parseMount } from '../dockerfile/parse-instructions.js';
import { parseDockerfile, type Warning } from '../dockerfile/parser.js';
import { envFrom, ShellLex, type EnvGetter } from '../dockerfile/shell-lex.js';

/** Inputs of {@link planStages}. */
export interface PlanOptions {
  /** `--build-arg` values. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** `--target` stage name; default the last stage. */
  readonly target?: string;
  readonly targetPlatform: Platform;
  readonly buildPlatform: Platform;
  /** Escape token from the parse result (default `\`). */
  readonly escapeToken?: string;
  /** File name for error locations. */
  readonly file?: string;
}

/** Where a stage's root filesystem starts from. */
export type BaseSource =
  | { readonly kind: 'scratch' }
  | { readonly kind: 'stage'; readonly index: number }
  | { readonly kind: 'image'; readonly ref: string };

/** An edge of the stage graph. */
export interface StageDependency {
  readonly via: 'from' | 'copy' | 'mount';
  /** A stage of this Dockerfile, or an external image. */
  readonly source: { readonly kind: 'stage'; readonly index: number } | { readonly kind: 'image'; readonly ref: string };
  readonly location: SourceLocation;
}

/** A stage with its base and dependencies resolved (names, indexes and global ARGs applied). */
export interface PlannedStage {
  readonly index: number;
  /** Lower-cased `AS` name, or ''. */
  readonly name: string;
  /** `name`, or `stage-<index>` for unnamed stages (buildkit's stageName). */
  readonly displayName: string;
  /** FROM base after global ARG expansion. */
  readonly baseName: string;
  readonly base: BaseSource;
  /** Expanded `--platform`, if given. */
  readonly platform?: Platform;
  readonly deps: readonly StageDependency[];
  /** Needed to build the target. */
  readonly reachable: boolean;
  readonly stage: Stage;
}

/** Output of {@link planStages}: the multi-stage dependency graph. */
export interface StageGraph {
  readonly stages: readonly PlannedStage[];
  /** Index of the target stage. */
  readonly target: number;
  /** Reachable stages, every stage after all stages it depends on. */
  readonly order: readonly number[];
  /** Global (pre-FROM) ARG scope: predefined platform ARGs, meta ARGs and their --build-arg overrides. */
  readonly globalArgs: ReadonlyMap<string, string>;
  /** Names declared by meta ARGs. */
  readonly metaArgNames: ReadonlySet<string>;
  readonly options: PlanOptions;
  readonly warnings: readonly Warning[];
}

/** Proxy variables passed to RUN without an ARG declaration and never reported as unused. */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];

/** Names of the predefined platform ARGs (buildkit defaultArgs). */
export const PLATFORM_ARGS: readonly string[] = [
  'BUILDPLATFORM', 'BUILDOS', 'BUILDOSVERSION', 'BUILDARCH', 'BUILDVARIANT',
  'TARGETPLATFORM', 'TARGETOS', 'TARGETOSVERSION', 'TARGETARCH', 'TARGETVARIANT', 'TARGETSTAGE',
];

/** The predefined ARG values for a build (overridable by --build-arg). */
export function defaultArgs(opts: PlanOptions, targetName: string): Map<string, string> {
  const bp = opts.buildPlatform;
  const tp = opts.targetPlatform;
  const m = new Map<string, string>([
    ['BUILDPLATFORM', formatPlatform(bp)],
    ['BUILDOS', bp.os],
    ['BUILDOSVERSION', bp['os.version'] ?? ''],
    ['BUILDARCH', bp.architecture],
    ['BUILDVARIANT', bp.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(tp)],
    ['TARGETOS', tp.os],
    ['TARGETOSVERSION', tp['os.version'] ?? ''],
    ['TARGETARCH', tp.architecture],
    ['TARGETVARIANT', tp.variant ?? ''],
    ['TARGETSTAGE', targetName || 'default'],
  ]);
  for (const k of m.keys()) {
    const ov = opts.buildArgs?.[k];
    if (ov !== undefined) m.set(k, ov);
  }
  return m;
}

/** An EnvGetter over an ordered Map (later set wins, as llb.EnvList AddOrReplace). */
export function mapEnv(m: ReadonlyMap<string, string>): EnvGetter {
  return { get: (k) => m.get(k), keys: () => [...m.keys()] };
}

/** Evaluates the meta ARGs (before the first FROM) in order: --build-arg wins, defaults are expanded in the scope so far. */
export function buildMetaArgs(base: Map<string, string>, lex: ShellLex, metaArgs: readonly ArgInstruction[], buildArgs: Readonly<Record<string, string>>, file?: string): Map<string, string> {
  const args = new Map(base);
  for (const cmd of metaArgs) {
    for (const kp of cmd.args) {
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(buildArgs, kp.key)) {
        value = buildArgs[kp.key];
      } else if (kp.value !== undefined) {
        try {
          value = lex.processWord(kp.value, mapEnv(args)).result;
        } catch (e) {
          throw withLocation(e, { ...cmd.location, ...(file ? { file } : {}) });
        }
      }
      if (value !== undefined) {
        args.delete(kp.key);
        args.set(kp.key, value);
      }
    }
  }
  return args;
}

function stageDisplayName(s: Stage): string {
  return s.from.name || `stage-${s.index}`;
}

/** containerd platforms.Parse, reduced to what Dockerfiles use: os/arch[/variant], lower-cased, arch aliases normalised. */
export function parsePlatformSpec(s: string): Platform {
  const parts = s.toLowerCase().split('/');
  const norm = (a: string): string => ({ x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' })[a] ?? a;
  if (parts.length === 1 && parts[0]) return { os: 'linux', architecture: norm(parts[0]) };
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new Error(`${JSON.stringify(s)}: unknown operating system or architecture: invalid argument`);
  const p: { os: string; architecture: string; variant?: string } = { os: parts[0], architecture: norm(parts[1]) };
  if (parts[2]) p.variant = parts[2];
  else if (p.architecture === 'arm64') p.variant = 'v8';
  return p;
}

/**
 * Builds the stage graph exactly like buildkit's dispatchStates: expands
 * FROM and --platform with the global ARGs, resolves `FROM <stage>` against
 * EARLIER stages (case-sensitive, as buildkit), `COPY --from` by stage index or
 * name (any stage) and falls back to an image reference, `--mount from=` by
 * name, rejects cycles, selects the target and computes the reachable set.
 * Errors are located DockerfileErrors.
 */
export function planStages(df: ParsedDockerfile, opts: PlanOptions): StageGraph {
  const file = opts.file ?? 'Dockerfile';
  const at = (l: SourceLocation): SourceLocation => ({ ...l, file });
  if (df.stages.length === 0) throw new DockerfileError('INVALID_INSTRUCTION', 'dockerfile contains no stages to build');
  const lex = new ShellLex(opts.escapeToken ?? '\\');
  const targetName = opts.target || df.stages[df.stages.length - 1]!.from.name;
  const buildArgs = opts.buildArgs ?? {};
  const globalArgs = buildMetaArgs(defaultArgs(opts, targetName), lex, df.metaArgs, buildArgs, file);
  const metaArgNames = new Set(df.metaArgs.flatMap((a) => a.args.map((kp) => kp.key)));
  const genv = mapEnv(globalArgs);
  const byName = new Map<string, number>();
  const planned: ({ -readonly [K in keyof PlannedStage]: PlannedStage[K] } & { deps: StageDependency[] })[] = [];

  // === FROM: base name and platform
  for (const st of df.stages) {
    const loc = at(st.from.location);
    let baseName: string;
    try {
      baseName = lex.processWord(st.from.baseName, genv).result;
    } catch (e) {
      throw withLocation(e, loc);
    }
    if (baseName === '') {
      throw new DockerfileError('INVALID_INSTRUCTION', `base name (${st.from.baseName}) should not be blank`, { location: loc });
    }
    let platform: Platform | undefined;
    if (st.from.platform !== '') {
      let r;
      try {
        r = lex.processWord(st.from.platform, genv);
      } catch (e) {
        throw withLocation(e, loc);
      }
      if (r.result === '') {
        const s = [...r.unmatched].map((u) => suggest(u, [...globalArgs.keys()], true)).find(Boolean);
        throw new DockerfileError('INVALID_INSTRUCTION', `empty platform value from expression ${st.from.platform}`, { location: loc, ...(s ? { suggestion: s } : {}) });
      }
      try {
        platform = parsePlatformSpec(r.result);
      } catch (e) {
        throw new DockerfileError('INVALID_INSTRUCTION', `failed to parse platform ${st.from.platform}: ${(e as Error).message}`, { location: loc, cause: e });
      }
    }
    const earlier = byName.get(baseName);
    const base: BaseSource = earlier !== undefined ? { kind: 'stage', index: earlier } : baseName === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: baseName };
    const deps: StageDependency[] = base.kind === 'stage' ? [{ via: 'from', source: { kind: 'stage', index: base.index }, location: loc }] : base.kind === 'image' ? [{ via: 'from', source: { kind: 'image', ref: baseName }, location: loc }] : [];
    const p: (typeof planned)[number] = { index: st.index, name: st.from.name, displayName: stageDisplayName(st), baseName, base, deps, reachable: false, stage: st };
    if (platform) p.platform = platform;
    planned.push(p);
    if (st.from.name !== '') byName.set(st.from.name, st.index);
  }

  // === COPY --from and RUN --mount from=
  const empty = envFrom({});
  for (const p of planned) {
    for (const ins of p.stage.instructions) {
      const loc = at(ins.location);
      if (ins.kind === 'COPY' && ins.from !== '') {
        let r: string;
        try {
          r = lex.processWord(ins.from, empty).result;
        } catch (e) {
          throw withLocation(e, loc);
        }
        if (r !== ins.from) {
          throw new DockerfileError('INVALID_FLAG', 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', { location: loc });
        }
        if (/^[+-]?[0-9]+$/.test(ins.from)) {
          const idx = Number.parseInt(ins.from, 10);
          if (idx < 0 || idx >= planned.length) throw new DockerfileError('UNKNOWN_STAGE', `invalid stage index ${idx}`, { location: loc, text: ins.from });
          p.deps.push({ via: 'copy', source: { kind: 'stage', index: idx }, location: loc });
        } else {
          const idx = byName.get(ins.from.toLowerCase());
          p.deps.push({ via: 'copy', source: idx !== undefined ? { kind: 'stage', index: idx } : { kind: 'image', ref: ins.from }, location: loc });
        }
      }
      if (ins.kind === 'RUN') {
        for (const raw of ins.mounts) {
          let m;
          try {
            m = parseMount(raw);
          } catch (e) {
            throw withLocation(e, loc);
          }
          if (m.from === '') continue;
          const idx = byName.get(m.from.toLowerCase());
          p.deps.push({ via: 'mount', source: idx !== undefined ? { kind: 'stage', index: idx } : { kind: 'image', ref: m.from }, location: loc });
        }
      }
    }
  }

  // === ONBUILD triggers of a parent stage run in the child: their COPY --from are the child's dependencies
  for (const p of planned) {
    if (p.base.kind !== 'stage') continue;
    const loc = at(p.stage.from.location);
    for (const ins of planned[p.base.index]!.stage.instructions) {
      if (ins.kind !== 'ONBUILD') continue;
      let trigger;
      try {
        const node = parseDockerfile(ins.expression, { file }).ast.children[0]!;
        trigger = parseInstruction(node, loc);
      } catch (e) {
        throw withLocation(e instanceof DockerfileError && e.location ? new DockerfileError(e.code, e.detail, { cause: e }) : e, loc);
      }
      if (trigger.kind !== 'COPY' || trigger.from === '') continue;
      const idx = /^[+-]?[0-9]+$/.test(trigger.from) ? Number.parseInt(trigger.from, 10) : byName.get(trigger.from.toLowerCase());
      if (idx !== undefined && (idx < 0 || idx >= planned.length)) throw new DockerfileError('UNKNOWN_STAGE', `invalid stage index ${idx}`, { location: loc });
      p.deps.push({ via: 'copy', source: idx !== undefined ? { kind: 'stage', index: idx } : { kind: 'image', ref: trigger.from }, location: loc });
    }
  }

  // === cycles (buildkit validateCircularDependency: DFS in stage order)
  const visited = new Set<number>();
  const onPath = new Set<number>();
  const visit = (i: number, trail: StageDependency[]): StageDependency[] | undefined => {
    if (visited.has(i)) return undefined;
    visited.add(i);
    onPath.add(i);
    for (const d of planned[i]!.deps) {
      if (d.source.kind !== 'stage') continue;
      const next = [...trail, d];
      if (onPath.has(d.source.index)) return next;
      const c = visit(d.source.index, next);
      if (c) return c;
    }
    onPath.delete(i);
    return undefined;
  };
  for (const p of planned) {
    const cyc = visit(p.index, []);
    if (cyc) {
      throw new DockerfileError('STAGE_CYCLE', `circular dependency detected on stage: ${p.displayName}`, { location: cyc[cyc.length - 1]!.location });
    }
  }

  // === target and reachability
  let target = planned.length - 1;
  if (opts.target) {
    const t = byName.get(opts.target.toLowerCase());
    if (t === undefined) {
      const s = suggest(opts.target, [...byName.keys()], true);
      throw new DockerfileError('UNKNOWN_STAGE', `target stage ${JSON.stringify(opts.target)} could not be found`, { text: opts.target, ...(s ? { suggestion: s } : {}) });
    }
    target = t;
  }
  const order: number[] = [];
  const mark = (i: number): void => {
    const p = planned[i]!;
    if (p.reachable) return;
    p.reachable = true;
    for (const d of p.deps) if (d.source.kind === 'stage') mark(d.source.index);
    order.push(i);
  };
  mark(target);

  return { stages: planned, target, order, globalArgs, metaArgNames, options: opts, warnings: [] };
}
