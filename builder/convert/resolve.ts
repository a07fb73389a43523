import { posix } from 'node:path';
import type { ContainerConfig, HealthConfig as OciHealthConfig } from '../../src/oci/config.js';
import type { Platform } from '../../src/oci/platform.js';
import { DockerfileError, withLocation, type SourceLocation } from '../dockerfile/errors.js';
import type { Instruction, KeyValuePairOptional, Mount, ShellInlineFile } from '../dockerfile/instructions.js';
import { parseInstruction, parseMount, nodeLocation } from '../dockerfile/parse-instructions.js';
import { chompHeredocContent, goQuoteExact, parseDockerfile, parseHeredoc, type Warning } from '../dockerfile/parser.js';
import { ShellLex, type EnvGetter } from '../dockerfile/shell-lex.js';
import { PLATFORM_ARGS, PROXY_ARGS, type BaseSource, type StageGraph } from './stages.js';

/** Comment buildkit writes into every history entry. */
export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';
/** PATH set when the base image has none (buildkit system.DefaultPathEnv for Linux). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Shell used for shell-form instructions when neither SHELL nor the base image sets one. */
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

/** One image history entry produced by a step. */
export interface StepHistory {
  readonly createdBy: string;
  readonly emptyLayer: boolean;
  readonly comment: string;
}

interface StepBase {
  readonly location: SourceLocation;
  readonly original: string;
  readonly history: StepHistory;
  /** True for steps that came from a base's ONBUILD triggers. */
  readonly onbuild: boolean;
}

/** A file made from a heredoc that the executor mounts read-only for the process (shebang heredocs). */
export interface InlineFile {
  /** Absolute path inside the container (under /dev/pipes/). */
  readonly path: string;
  readonly data: string;
  readonly mode: number;
}

/** A RUN: argv, environment and mounts are final; the executor runs it on top of the stage's snapshot. */
export interface RunStep extends StepBase {
  readonly kind: 'RUN';
  readonly args: readonly string[];
  /** Process environment: image ENV plus ARG values in scope (buildkit state env), `KEY=value`. */
  readonly env: readonly string[];
  /** Proxy --build-args passed to the process but never stored in the image. */
  readonly proxyEnv: readonly string[];
  readonly cwd: string;
  readonly user: string;
  readonly mounts: readonly ResolvedMount[];
  readonly network: 'default' | 'none' | 'host';
  readonly security: 'sandbox' | 'insecure';
  readonly inlineFiles: readonly InlineFile[];
}

/** A `--mount` with its `from` resolved to a stage, an image or the build context. */
export interface ResolvedMount extends Mount {
  /** Where `source` is read from: bind/cache mounts default to the build context (bind) or an empty cache. */
  readonly fromSource: { readonly kind: 'context' } | { readonly kind: 'stage'; readonly index: number } | { readonly kind: 'image'; readonly ref: string };
}

/** Where COPY/ADD read from. */
export type CopySource = { readonly kind: 'context' } | { readonly kind: 'stage'; readonly index: number } | { readonly kind: 'image'; readonly ref: string };

/** A COPY or ADD with expanded words; `dest` is absolute (trailing `/` kept: it means "into the directory"). */
export interface CopyStep extends StepBase {
  readonly kind: 'COPY' | 'ADD';
  readonly from: CopySource;
  readonly sources: readonly string[];
  /** Heredoc sources, expanded when their delimiter was unquoted. */
  readonly contents: readonly { readonly path: string; readonly data: string }[];
  readonly dest: string;
  readonly chown: string;
  readonly chmod: string;
  readonly link: boolean;
  readonly parents: boolean;
  readonly excludes: readonly string[];
  readonly checksum: string;
  readonly keepGitDir?: boolean;
  readonly unpack?: boolean;
  readonly user: string;
}

/** WORKDIR: the executor creates `path` (owned by `user`) in the snapshot. */
export interface WorkdirStep extends StepBase {
  readonly kind: 'WORKDIR';
  readonly path: string;
  readonly user: string;
}

/** A metadata-only instruction (ENV, LABEL, CMD …): its effect is already in the stage config. */
export interface ConfigStep extends StepBase {
  readonly kind: 'CONFIG';
  readonly instruction: Instruction['kind'];
}

/** What the executor does for one instruction, in order. */
export type Step = RunStep | CopyStep | WorkdirStep | ConfigStep;

/** The base a stage is resolved on. */
export type BaseInput =
  | { readonly kind: 'scratch' }
  | { readonly kind: 'image'; readonly config: ContainerConfig; readonly os?: string }
  | { readonly kind: 'stage'; readonly resolved: ResolvedStage };

/** A stage with every word expanded: the executor's input. */
export interface ResolvedStage {
  readonly index: number;
  readonly name: string;
  readonly displayName: string;
  readonly base: BaseSource;
  readonly platform: Platform;
  readonly steps: readonly Step[];
  /** Image config after the stage (ENV, LABEL, CMD, ENTRYPOINT, USER, WORKDIR, …). OnBuild holds this stage's own triggers. */
  readonly config: ContainerConfig;
  /** MAINTAINER, if any. */
  readonly author?: string;
  /** Ordered state environment (ENV and ARG values) at the end of the stage; a child stage starts from it. */
  readonly stateEnv: readonly (readonly [string, string])[];
  /** ARGs in scope at the end of the stage, values resolved. */
  readonly buildArgs: readonly KeyValuePairOptional[];
  /** Build-arg names this stage declared with ARG. */
  readonly declaredArgs: ReadonlySet<string>;
}

/** Ordered environment with replace-in-place (llb AddEnv). */
class EnvList {
  private readonly m = new Map<string, string>();
  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [k, v] of init) this.m.set(k, v);
  }
  set(k: string, v: string): void {
    this.m.set(k, v);
  }
  get(k: string): string | undefined {
    return this.m.get(k);
  }
  entries(): [string, string][] {
    return [...this.m.entries()];
  }
  getter(): EnvGetter {
    const snap = new Map(this.m);
    return { get: (k) => snap.get(k), keys: () => [...snap.keys()] };
  }
  strings(): string[] {
    return this.entries().map(([k, v]) => `${k}=${v}`);
  }
}

function splitEnv(e: string): [string, string] {
  const i = e.indexOf('=');
  return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
}

/** Adds or replaces `k` in a `KEY=value` list (buildkit addEnv). */
function addEnv(env: string[], k: string, v: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => splitEnv(e)[0] === k);
  if (i >= 0) out[i] = `${k}=${v}`;
  else out.push(`${k}=${v}`);
  return out;
}

function cloneConfig(c: ContainerConfig | undefined): ContainerConfig {
  return c ? (JSON.parse(JSON.stringify(c)) as ContainerConfig) : {};
}

/** buildkit system.NormalizeWorkdir for Linux. */
export function normalizeWorkdir(current: string, requested: string): string {
  if (requested === '') throw new DockerfileError('INVALID_INSTRUCTION', 'cannot normalize nothing');
  const p = posix.isAbsolute(requested) ? requested : posix.join('/', current, requested);
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/** buildkit pathRelativeToWorkingDir + NormalizePath(keepSlash): absolute, cleaned, trailing slash kept. */
export function destRelativeToWorkdir(workdir: string, p: string): string {
  let q = p;
  if (!posix.isAbsolute(q)) {
    if (q === '.' || q === '') q = './';
    q = posix.join(workdir || '/', q);
  }
  const keepSlash = /\/\.?$/.test(p) || p === '.' || p === '';
  let out = posix.normalize(q);
  if (out.length > 1) out = out.replace(/\/+$/, '');
  if (keepSlash && !out.endsWith('/')) out += '/';
  return out;
}

/** Go fmt %q of a []string: `["a" "b"]`. */
function goQuoteList(a: readonly string[]): string {
  return '[' + a.map(goQuoteExact).join(' ') + ']';
}

/** Go's time.Duration.String() of a nanosecond count. */
export function goDuration(nanos: number): string {
  if (nanos === 0) return '0s';
  const neg = nanos < 0;
  const u = BigInt(Math.round(Math.abs(nanos)));
  const frac = (v: bigint, digits: number): string => {
    const p = 10n ** BigInt(digits);
    const f = (v % p).toString().padStart(digits, '0').replace(/0+$/, '');
    return `${v / p}${f ? '.' + f : ''}`;
  };
  let out: string;
  if (u < 1000n) out = `${u}ns`;
  else if (u < 1_000_000n) out = `${frac(u, 3)}µs`;
  else if (u < 1_000_000_000n) out = `${frac(u, 6)}ms`;
  else {
    const secs = u / 1_000_000_000n;
    const h = secs / 3600n;
    const m = (secs / 60n) % 60n;
    const s = frac(u % 60_000_000_000n, 9);
    out = `${h > 0n ? `${h}h` : ''}${h > 0n || m > 0n ? `${m}m` : ''}${s}s`;
  }
  return neg ? '-' + out : out;
}

/** Go's `%q` of a rune value (an int formatted with %q), as buildkit's history shows Retries. */
function goQuoteRune(n: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (named[n]) return `'${named[n]}'`;
  if (n >= 0x20 && n < 0x7f) return `'${String.fromCharCode(n)}'`;
  if (n < 0x80) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  if (n < 0x10000) return `'\\u${n.toString(16).padStart(4, '0')}'`;
  return `'\\U${n.toString(16).padStart(8, '0')}'`;
}

/**
 * buildkit's history text of HEALTHCHECK: Go's `%q` of the `*HealthcheckConfig`
 * (`&{[test...] "interval" "timeout" "startPeriod" "startInterval" 'retries'}`).
 */
export function goHealthcheck(hc: OciHealthConfig): string {
  const d = (v: number | undefined): string => goQuoteExact(goDuration(v ?? 0));
  return `&{${goQuoteList(hc.Test ?? [])} ${d(hc.Interval)} ${d(hc.Timeout)} ${d(hc.StartPeriod)} ${d(hc.StartInterval)} ${goQuoteRune(hc.Retries ?? 0)}}`;
}

/** Docker port specs (go-connections nat.ParsePortSpecs) → `port/proto` keys. */
export function parsePorts(ports: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of ports) {
    let spec = raw;
    let proto = 'tcp';
    const slash = spec.lastIndexOf('/');
    if (slash >= 0) {
      proto = spec.slice(slash + 1).toLowerCase();
      spec = spec.slice(0, slash);
    }
    // ip:hostPort:containerPort → containerPort
    const colon = spec.lastIndexOf(':');
    if (colon >= 0) spec = spec.slice(colon + 1);
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(spec);
    if (!m) throw new DockerfileError('INVALID_INSTRUCTION', `invalid containerPort: ${spec}`, { text: raw });
    const start = Number(m[1]);
    const end = m[2] ? Number(m[2]) : start;
    if (end < start || end > 65535) throw new DockerfileError('INVALID_INSTRUCTION', `invalid range specified for containerPort: ${spec}`, { text: raw });
    for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  }
  return out;
}

const SIGNAL = /^(SIG)?[A-Z0-9+-]+$|^[0-9]+$/;

/** Options of {@link resolveStage}. */
export interface ResolveOptions {
  /** ONBUILD triggers to run first (from the base image config); for stage bases they are taken from the parent. */
  readonly triggers?: readonly string[];
}

/**
 * Resolves one planned stage on `base` with buildkit's scoping: state env =
 * base ENV (+ parent stage's ARG values for `FROM <stage>`), each instruction
 * expanded with the env from BEFORE it, `ARG` pulling values from --build-arg,
 * its default, or the global scope, platform ARGs only when declared, ENV and
 * ARG changing the env of later instructions. Pure: no I/O.
 */
export function resolveStage(graph: StageGraph, index: number, base: BaseInput, ropts: ResolveOptions = {}): ResolvedStage {
  const planned = graph.stages[index]!;
  const opts = graph.options;
  const file = opts.file ?? 'Dockerfile';
  const lex = new ShellLex(opts.escapeToken ?? '\\');
  const buildArgValues = opts.buildArgs ?? {};
  const platform = planned.platform ?? (base.kind === 'stage' ? base.resolved.platform : opts.targetPlatform);

  // === initial state from the base
  let config: ContainerConfig;
  let state: EnvList;
  let buildArgs: KeyValuePairOptional[] = [];
  let triggers: string[] = [];
  if (base.kind === 'stage') {
    config = cloneConfig(base.resolved.config);
    state = new EnvList(base.resolved.stateEnv);
    buildArgs = [...base.resolved.buildArgs];
    triggers = base.resolved.config.OnBuild ? [...base.resolved.config.OnBuild] : [];
  } else {
    // buildkit's emptyImage: FROM scratch starts with WorkingDir "/" (and PATH, below)
    config = base.kind === 'image' ? cloneConfig(base.config) : { WorkingDir: '/' };
    triggers = [...(ropts.triggers ?? (base.kind === 'image' ? (base.config.OnBuild ?? []) : []))];
    const env = config.Env ?? [];
    if (!env.some((e) => splitEnv(e)[0] === 'PATH') && platform.os !== 'windows') config.Env = [...env, `PATH=${DEFAULT_PATH}`];
    state = new EnvList((config.Env ?? []).map(splitEnv));
  }
  config.OnBuild = null;
  const onbuild: string[] = [];
  const declared = new Set<string>();
  let author: string | undefined;
  let cmdSet = false;
  const proxyEnv = PROXY_ARGS.filter((k) => buildArgValues[k] !== undefined).map((k) => `${k}=${buildArgValues[k]}`);
  const steps: Step[] = [];

  // === ONBUILD triggers of the base run first, located at the FROM line
  const instructions: { ins: Instruction; onbuild: boolean }[] = [];
  for (const t of triggers) {
    const loc = { ...planned.stage.from.location, file };
    try {
      const ast = parseDockerfile(t, { file });
      if (ast.ast.children.length !== 1) throw new DockerfileError('INVALID_INSTRUCTION', 'onbuild trigger should be a single expression');
      const node = ast.ast.children[0]!;
      const ins = parseInstruction(node, nodeLocation(node, file));
      if (ins.kind === 'FROM') throw new DockerfileError('INVALID_INSTRUCTION', "FROM isn't allowed as an ONBUILD trigger");
      instructions.push({ ins: { ...ins, location: loc }, onbuild: true });
    } catch (e) {
      throw withLocation(e instanceof DockerfileError && e.location ? new DockerfileError(e.code, e.detail, { cause: e }) : e, loc);
    }
  }
  for (const ins of planned.stage.instructions) instructions.push({ ins, onbuild: false });

  const stageByName = new Map(graph.stages.filter((s) => s.name !== '').map((s) => [s.name, s.index]));

  for (const { ins, onbuild: isOnbuild } of instructions) {
    const loc: SourceLocation = { ...ins.location, file };
    const env = state.getter();
    const expand = (w: string): string => lex.processWord(w, env).result;
    const hist = (createdBy: string, withLayer: boolean, buildkitSuffix = false): StepHistory => ({
      createdBy: buildkitSuffix ? createdBy + ' # buildkit' : createdBy,
      emptyLayer: !withLayer,
      comment: HISTORY_COMMENT,
    });
    const cfgStep = (createdBy: string): ConfigStep => ({ kind: 'CONFIG', instruction: ins.kind, location: loc, original: ins.original, history: hist(createdBy, false), onbuild: isOnbuild });
    const shell = (): string[] => [...(config.Shell && config.Shell.length ? config.Shell : DEFAULT_SHELL)];
    try {
      switch (ins.kind) {
        case 'ENV': {
          const kvs = ins.env.map((kv) => ({ key: expand(kv.key), value: expand(kv.value) }));
          let msg = 'ENV';
          for (const kv of kvs) {
            msg += ` ${kv.key}=${kv.value}`;
            state.set(kv.key, kv.value);
            config.Env = addEnv(config.Env ?? [], kv.key, kv.value);
          }
          steps.push(cfgStep(msg));
          break;
        }
        case 'ARG': {
          const strs: string[] = [];
          for (const a of ins.args) {
            let value = a.value;
            const hasValue = Object.prototype.hasOwnProperty.call(buildArgValues, a.key);
            if (value === undefined && !hasValue) {
              const g = graph.globalArgs.get(a.key);
              if (g !== undefined) value = g;
            }
            if (hasValue) value = buildArgValues[a.key];
            else if (a.value !== undefined) value = lex.processWord(a.value, env).result;
            if (value !== undefined && !a.key.startsWith('BUILDKIT_SBOM_SCAN_')) state.set(a.key, value);
            declared.add(a.key);
            buildArgs.push(value === undefined ? { key: a.key } : { key: a.key, value });
            strs.push(value === undefined ? a.key : `${a.key}=${value}`);
          }
          steps.push(cfgStep('ARG ' + strs.join(' ')));
          break;
        }
        case 'LABEL': {
          let msg = 'LABEL';
          const labels = { ...(config.Labels ?? {}) };
          for (const kv of ins.labels) {
            const k = expand(kv.key);
            const v = expand(kv.value);
            msg += ` ${k}=${v}`;
            labels[k] = v;
          }
          config.Labels = labels;
          steps.push(cfgStep(msg));
          break;
        }
        case 'MAINTAINER':
          author = ins.maintainer;
          steps.push(cfgStep(`MAINTAINER ${ins.maintainer}`));
          break;
        case 'WORKDIR': {
          const wd = normalizeWorkdir(config.WorkingDir ?? '', expand(ins.path));
          config.WorkingDir = wd;
          steps.push({ kind: 'WORKDIR', path: wd, user: config.User ?? '', location: loc, original: ins.original, history: hist(`WORKDIR ${wd}`, true), onbuild: isOnbuild });
          break;
        }
        case 'USER': {
          const u = expand(ins.user);
          config.User = u;
          steps.push(cfgStep(`USER ${u}`));
          break;
        }
        case 'VOLUME': {
          const vols: string[] = [];
          const v = { ...(config.Volumes ?? {}) };
          for (const raw of ins.volumes) {
            const x = expand(raw);
            if (x === '') throw new DockerfileError('INVALID_INSTRUCTION', 'VOLUME specified can not be an empty string');
            v[x] = {};
            vols.push(x);
          }
          config.Volumes = v;
          steps.push(cfgStep(`VOLUME [${vols.join(' ')}]`));
          break;
        }
        case 'STOPSIGNAL': {
          const s = expand(ins.signal);
          if (!SIGNAL.test(s)) throw new DockerfileError('INVALID_INSTRUCTION', `Invalid signal: ${s}`, { text: ins.signal });
          config.StopSignal = s;
          steps.push(cfgStep(`STOPSIGNAL ${s}`));
          break;
        }
        case 'EXPOSE': {
          const words = ins.ports.flatMap((p) => lex.processWords(p, env));
          const ports = parsePorts(words);
          const ep = { ...(config.ExposedPorts ?? {}) };
          for (const p of ports) ep[p] = {};
          config.ExposedPorts = ep;
          steps.push(cfgStep(`EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]`));
          break;
        }
        case 'SHELL':
          config.Shell = [...ins.shell];
          steps.push(cfgStep(`SHELL [${ins.shell.join(' ')}]`));
          break;
        case 'CMD': {
          const args = ins.prependShell ? [...shell(), ...ins.cmdLine] : [...ins.cmdLine];
          config.Cmd = args;
          config.ArgsEscaped = true;
          cmdSet = true;
          steps.push(cfgStep(`CMD ${goQuoteList(args)}`));
          break;
        }
        case 'ENTRYPOINT': {
          const args = ins.prependShell ? [...shell(), ...ins.cmdLine] : [...ins.cmdLine];
          config.Entrypoint = args.length ? args : null;
          if (!cmdSet) config.Cmd = null;
          steps.push(cfgStep(`ENTRYPOINT ${goQuoteList(args)}`));
          break;
        }
        case 'HEALTHCHECK': {
          const h = ins.health;
          const hc: OciHealthConfig = { Test: [...h.test] };
          if (h.interval !== undefined) hc.Interval = h.interval;
          if (h.timeout !== undefined) hc.Timeout = h.timeout;
          if (h.startPeriod !== undefined) hc.StartPeriod = h.startPeriod;
          if (h.startInterval !== undefined) hc.StartInterval = h.startInterval;
          if (h.retries !== undefined) hc.Retries = h.retries;
          config.Healthcheck = hc;
          steps.push(cfgStep(`HEALTHCHECK ${goHealthcheck(hc)}`));
          break;
        }
        case 'ONBUILD':
          // buildkit's dispatchOnbuild only records the trigger: no step, no history entry
          onbuild.push(ins.expression);
          break;
        case 'RUN':
          steps.push(resolveRun(ins, { config, state, env, expand, shell: shell(), buildArgs, proxyEnv, stageByName, loc, hist, isOnbuild }));
          break;
        case 'COPY':
        case 'ADD': {
          const sources = ins.sourcePaths.map(expand);
          const rawDest = expand(ins.destPath);
          const dest = destRelativeToWorkdir(config.WorkingDir ?? '/', rawDest);
          const rawLex = new ShellLex('\\', { skipProcessQuotes: true });
          const contents = ins.sourceContents.map((c) => ({ path: c.path, data: c.expand ? rawLex.processWord(c.data, env).result : c.data }));
          let from: CopySource = { kind: 'context' };
          if (ins.kind === 'COPY' && ins.from !== '') {
            if (/^[+-]?[0-9]+$/.test(ins.from)) from = { kind: 'stage', index: Number.parseInt(ins.from, 10) };
            else {
              const i = stageByName.get(ins.from.toLowerCase());
              from = i !== undefined ? { kind: 'stage', index: i } : { kind: 'image', ref: ins.from };
            }
          }
          const chown = expand(ins.chown);
          const chmod = expand(ins.chmod);
          const excludes = ins.excludes.map(expand);
          const names = [...sources, ...contents.map((c) => c.path)];
          const step: CopyStep = {
            kind: ins.kind,
            from,
            sources,
            contents,
            dest,
            chown,
            chmod,
            link: ins.link,
            parents: ins.kind === 'COPY' ? ins.parents : false,
            excludes,
            checksum: ins.kind === 'ADD' ? expand(ins.checksum) : '',
            ...(ins.kind === 'ADD' && ins.keepGitDir !== undefined ? { keepGitDir: ins.keepGitDir } : {}),
            ...(ins.kind === 'ADD' && ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
            user: config.User ?? '',
            location: loc,
            original: ins.original,
            // buildkit's commit message names the destination as written (expanded), not resolved
            history: hist(`${ins.kind} ${[...names, rawDest].join(' ')}`, true, true),
            onbuild: isOnbuild,
          };
          steps.push(step);
          break;
        }
      }
    } catch (e) {
      throw withLocation(e, loc);
    }
  }
  config.OnBuild = onbuild.length ? onbuild : null;
  return {
    index,
    name: planned.name,
    displayName: planned.displayName,
    base: planned.base,
    platform,
    steps,
    config,
    ...(author !== undefined ? { author } : base.kind === 'stage' && base.resolved.author !== undefined ? { author: base.resolved.author } : {}),
    stateEnv: state.entries(),
    buildArgs,
    declaredArgs: declared,
  };
}

interface RunCtx {
  config: ContainerConfig;
  state: EnvList;
  env: EnvGetter;
  expand: (w: string) => string;
  shell: string[];
  buildArgs: readonly KeyValuePairOptional[];
  proxyEnv: readonly string[];
  stageByName: ReadonlyMap<string, number>;
  loc: SourceLocation;
  hist: (createdBy: string, withLayer: boolean, suffix?: boolean) => StepHistory;
  isOnbuild: boolean;
}

function resolveRun(ins: Extract<Instruction, { kind: 'RUN' }>, c: RunCtx): RunStep {
  let args = [...ins.cmdLine];
  const inlineFiles: InlineFile[] = [];
  if (ins.files.length > 0) {
    if (args.length !== 1 || !ins.prependShell) {
      throw new DockerfileError('INVALID_INSTRUCTION', `parsing produced an invalid run command: [${args.join(' ')}]`);
    }
    const only = parseHeredocSafe(args[0]!);
    if (only) {
      const f: ShellInlineFile = ins.files[0]!;
      const data = f.chomp ? chompHeredocContent(f.data) : f.data;
      if (data.startsWith('#!')) {
        const p = posix.join('/dev/pipes/', f.name);
        inlineFiles.push({ path: p, data, mode: 0o755 });
        args = [p];
      } else {
        args = [data];
      }
    } else {
      let b = args[0]!;
      for (const f of ins.files) b += '\n' + f.data + f.name;
      args = [b];
    }
  }
  // buildkit withShell: the shell gets the joined command line as one argument
  if (ins.prependShell) args = [...c.shell, args.join(' ')];
  const mounts: ResolvedMount[] = ins.mounts.map((raw) => {
    const m = parseMount(raw, c.expand);
    let fromSource: ResolvedMount['fromSource'] = { kind: 'context' };
    if (m.from !== '') {
      const i = c.stageByName.get(m.from.toLowerCase());
      fromSource = i !== undefined ? { kind: 'stage', index: i } : { kind: 'image', ref: m.from };
    }
    return { ...m, fromSource };
  });
  // history: "RUN |N K=v ... <args>" like buildkit runCommandString
  const tmp = new Map<string, string>();
  for (const a of c.buildArgs) tmp.set(a.key, c.env.get(a.key) ?? a.value ?? '');
  const prefix = tmp.size ? [`|${tmp.size}`, ...[...tmp].map(([k, v]) => `${k}=${v}`)] : [];
  return {
    kind: 'RUN',
    args,
    env: c.state.strings(),
    proxyEnv: c.proxyEnv,
    cwd: c.config.WorkingDir || '/',
    user: c.config.User ?? '',
    mounts,
    network: ins.network as RunStep['network'],
    security: ins.security as RunStep['security'],
    inlineFiles,
    location: c.loc,
    original: ins.original,
    history: c.hist('RUN ' + [...prefix, ...args].join(' '), true, true),
    onbuild: c.isOnbuild,
  };
}

function parseHeredocSafe(s: string) {
  try {
    return parseHeredoc(s);
  } catch {
    return undefined;
  }
}

/** Output of {@link resolveStages}. */
export interface ResolvedBuild {
  /** Resolved reachable stages by index. */
  readonly stages: ReadonlyMap<number, ResolvedStage>;
  readonly target: ResolvedStage;
  /** Unused --build-arg warnings. */
  readonly warnings: readonly Warning[];
}

/**
 * Resolves every reachable stage in dependency order. `imageConfig(ref)`
 * returns the container config of an external base image (the caller
 * resolved it through its ImageResolver); scratch needs none.
 */
export function resolveStages(graph: StageGraph, imageConfig: (ref: string, platform: Platform | undefined) => ContainerConfig | undefined): ResolvedBuild {
  const out = new Map<number, ResolvedStage>();
  for (const i of graph.order) {
    const p = graph.stages[i]!;
    let base: BaseInput;
    if (p.base.kind === 'stage') base = { kind: 'stage', resolved: out.get(p.base.index)! };
    else if (p.base.kind === 'scratch') base = { kind: 'scratch' };
    else {
      const cfg = imageConfig(p.base.ref, p.platform);
      if (!cfg) throw new DockerfileError('UNKNOWN_STAGE', `no config for base image ${p.base.ref}`, { location: { ...p.stage.from.location, file: graph.options.file ?? 'Dockerfile' } });
      base = { kind: 'image', config: cfg };
    }
    out.set(i, resolveStage(graph, i, base));
  }
  return { stages: out, target: out.get(graph.target)!, warnings: unusedBuildArgWarnings(graph, [...out.values()]) };
}

/**
 * `--build-arg`s that no ARG consumed (meta ARGs, ARGs of reachable stages),
 * excluding predefined platform and proxy ARGs, as Docker's classic builder
 * reports them: `one or more build-args [A B] were not consumed`.
 */
export function unusedBuildArgWarnings(graph: StageGraph, resolved: readonly ResolvedStage[]): Warning[] {
  const used = new Set<string>([...graph.metaArgNames, ...PLATFORM_ARGS, ...PROXY_ARGS]);
  for (const r of resolved) for (const k of r.declaredArgs) used.add(k);
  const unused = Object.keys(graph.options.buildArgs ?? {})
    .filter((k) => !used.has(k) && !k.startsWith('BUILDKIT_') && k !== 'SOURCE_DATE_EPOCH')
    .sort();
  if (unused.length === 0) return [];
  return [{ short: `one or more build-args [${unused.join(' ')}] were not consumed` }];
}
