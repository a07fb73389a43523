import { DockerfileError, suggest, withLocation, type SourceLocation } from './errors.js';
import { chompHeredocContent, parseHeredoc, type Ast, type Heredoc, type Node } from './parser.js';
import { goQuote } from './shell-lex.js';
import {
  INSTRUCTION_NAMES,
  type AddInstruction,
  type ArgInstruction,
  type CmdInstruction,
  type CopyInstruction,
  type EntrypointInstruction,
  type EnvInstruction,
  type ExposeInstruction,
  type FromInstruction,
  type HealthConfig,
  type HealthcheckInstruction,
  type Instruction,
  type InstructionBase,
  type KeyValuePair,
  type KeyValuePairOptional,
  type LabelInstruction,
  type MaintainerInstruction,
  type Mount,
  type MountType,
  type OnbuildInstruction,
  type RunInstruction,
  type ShareMode,
  type ShellDependantCmdLine,
  type ShellInstruction,
  type SourceContent,
  type SourcesAndDest,
  type Stage,
  type StopSignalInstruction,
  type UserInstruction,
  type VolumeInstruction,
  type WorkdirInstruction,
} from './instructions.js';

/** Result of {@link parseInstructions}: stages in order and the ARGs before the first FROM. */
export interface ParsedDockerfile {
  readonly stages: readonly Stage[];
  readonly metaArgs: readonly ArgInstruction[];
}

function fail(detail: string, text?: string, code: 'INVALID_INSTRUCTION' | 'INVALID_FLAG' = 'INVALID_INSTRUCTION'): never {
  throw new DockerfileError(code, detail, text === undefined ? {} : { text });
}

/** Location of a node: keyword column on its first line. */
export function nodeLocation(n: Node, file?: string): SourceLocation {
  return { ...(file !== undefined ? { file } : {}), line: n.startLine, column: n.column, endLine: n.endLine };
}

/**
 * Turns the AST into typed stages (buildkit `instructions.Parse`). Every error
 * is a DockerfileError located at the failing instruction, e.g.
 * `Dockerfile:3:1: unknown instruction: RUNN (did you mean RUN?)`.
 */
export function parseInstructions(ast: Ast, opts: { file?: string } = {}): ParsedDockerfile {
  const file = opts.file ?? 'Dockerfile';
  const stages: { from: FromInstruction; index: number; instructions: Instruction[] }[] = [];
  const metaArgs: ArgInstruction[] = [];
  for (const n of ast.children) {
    const loc = nodeLocation(n, file);
    let parsed: Instruction | FromInstruction;
    try {
      parsed = parseInstruction(n, loc);
    } catch (e) {
      throw withLocation(e, loc, n.sourceLine);
    }
    if (parsed.kind === 'FROM') {
      stages.push({ from: parsed, index: stages.length, instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      if (parsed.kind === 'ARG') {
        metaArgs.push(parsed);
        continue;
      }
      throw withLocation(new DockerfileError('INVALID_INSTRUCTION', 'no build stage in current context', { text: n.value }), loc, n.sourceLine);
    }
    stages[stages.length - 1]!.instructions.push(parsed);
  }
  return { stages, metaArgs };
}

/** Flattened argument list of a node (buildkit nodeArgs): ONBUILD yields the trigger keyword and its args. */
function nodeArgs(n: Node): string[] {
  if (n.sub) return [n.sub.value, ...nodeArgs(n.sub)];
  return [...n.args];
}

/** Parses one AST node into a typed instruction; throws unlocated DockerfileErrors. */
export function parseInstruction(n: Node, loc: SourceLocation): Instruction | FromInstruction {
  const base: InstructionBase = { location: loc, original: n.original };
  const req: Req = { node: n, cmd: n.value, args: nodeArgs(n), flags: new BFlags(n.flags), base, heredocs: n.heredocs };
  switch (n.value.toLowerCase()) {
    case 'env':
      return parseEnv(req);
    case 'maintainer':
      return parseMaintainer(req);
    case 'label':
      return parseLabel(req);
    case 'add':
      return parseAdd(req);
    case 'copy':
      return parseCopy(req);
    case 'from':
      return parseFrom(req);
    case 'onbuild':
      return parseOnbuild(req);
    case 'workdir':
      return parseWorkdir(req);
    case 'run':
      return parseRun(req);
    case 'cmd':
      return { kind: 'CMD', ...base, ...parseCmdLine(req, false) } satisfies CmdInstruction;
    case 'entrypoint':
      return { kind: 'ENTRYPOINT', ...base, ...parseCmdLine(req, true) } satisfies EntrypointInstruction;
    case 'healthcheck':
      return parseHealthcheck(req);
    case 'expose':
      return parseExpose(req);
    case 'user':
      return parseUser(req);
    case 'volume':
      return parseVolume(req);
    case 'stopsignal':
      return parseStopSignal(req);
    case 'arg':
      return parseArg(req);
    case 'shell':
      return parseShell(req);
  }
  const s = suggest(n.value, INSTRUCTION_NAMES, false);
  throw new DockerfileError('UNKNOWN_INSTRUCTION', `unknown instruction: ${n.value}`, {
    text: n.value,
    ...(s ? { suggestion: s } : {}),
  });
}

interface Req {
  node: Node;
  cmd: string;
  args: string[];
  flags: BFlags;
  base: InstructionBase;
  heredocs: readonly Heredoc[];
}

// === flags (buildkit BFlags) ===

type FlagType = 'bool' | 'string' | 'strings';
interface Flag {
  type: FlagType;
  value: string;
  values: string[];
}

/** Builder flags of one instruction (`--name=value`), parsed as buildkit's BFlags. */
export class BFlags {
  private readonly defs = new Map<string, Flag>();
  readonly used = new Set<string>();
  constructor(private readonly args: readonly string[]) {}

  addBool(name: string, def: boolean): Flag {
    return this.add(name, 'bool', def ? 'true' : 'false');
  }
  addString(name: string, def: string): Flag {
    return this.add(name, 'string', def);
  }
  addStrings(name: string): Flag {
    return this.add(name, 'strings', '');
  }
  private add(name: string, type: FlagType, value: string): Flag {
    const f: Flag = { type, value, values: [] };
    this.defs.set(name, f);
    return f;
  }

  /** Applies the given flags to the definitions; throws UNKNOWN_FLAG / INVALID_FLAG. */
  parse(): void {
    for (const a of this.args) {
      if (a === '--') return;
      if (!a.startsWith('--')) fail(`arg should start with -- : ${a}`, a, 'INVALID_FLAG');
      const eq = a.indexOf('=');
      const flagName = eq < 0 ? a : a.slice(0, eq);
      const hasValue = eq >= 0;
      const value = hasValue ? a.slice(eq + 1) : '';
      const name = flagName.slice(2);
      const f = this.defs.get(name);
      if (!f) {
        const s = suggest(name, [...this.defs.keys()], true);
        throw new DockerfileError('UNKNOWN_FLAG', `unknown flag: ${flagName}`, { text: flagName, ...(s ? { suggestion: s } : {}) });
      }
      if (this.used.has(name) && f.type !== 'strings') fail(`duplicate flag specified: ${flagName}`, flagName, 'INVALID_FLAG');
      this.used.add(name);
      switch (f.type) {
        case 'bool':
          if (hasValue && value === '') fail(`missing a value on flag: ${flagName}`, flagName, 'INVALID_FLAG');
          switch (value.toLowerCase()) {
            case 'true':
            case '':
              f.value = 'true';
              break;
            case 'false':
              f.value = 'false';
              break;
            default:
              fail(`expecting boolean value for flag ${flagName}, not: ${value}`, flagName, 'INVALID_FLAG');
          }
          break;
        case 'string':
          if (!hasValue) fail(`missing a value on flag: ${flagName}`, flagName, 'INVALID_FLAG');
          f.value = value;
          break;
        case 'strings':
          if (!hasValue) fail(`missing a value on flag: ${flagName}`, flagName, 'INVALID_FLAG');
          f.values.push(value);
          break;
      }
    }
  }
}

// === instructions ===

function parseKvps(args: string[], cmd: string): KeyValuePair[] {
  if (args.length === 0) fail(`${cmd} requires at least one argument`);
  if (args.length % 3 !== 0) fail(`Bad input to ${cmd}, too many arguments`);
  const res: KeyValuePair[] = [];
  for (let j = 0; j < args.length; j += 3) {
    if (args[j]!.length === 0) fail(`${cmd} names can not be blank`);
    res.push({ key: args[j]!, value: args[j + 1]!, noDelim: args[j + 2] === '' });
  }
  return res;
}

function parseEnv(req: Req): EnvInstruction {
  req.flags.parse();
  return { kind: 'ENV', ...req.base, env: parseKvps(req.args, 'ENV') };
}

function parseMaintainer(req: Req): MaintainerInstruction {
  if (req.args.length !== 1) fail('MAINTAINER requires exactly one argument');
  req.flags.parse();
  return { kind: 'MAINTAINER', ...req.base, maintainer: req.args[0]! };
}

function parseLabel(req: Req): LabelInstruction {
  req.flags.parse();
  return { kind: 'LABEL', ...req.base, labels: parseKvps(req.args, 'LABEL') };
}

function parseSourcesAndDest(req: Req, cmd: string): SourcesAndDest {
  const srcs = req.args.slice(0, -1);
  const dest = req.args[req.args.length - 1]!;
  if (parseHeredocSafe(dest)) fail(`${cmd} cannot accept a heredoc as a destination`, dest);
  const lookup = new Map<string, Heredoc>();
  for (const h of req.heredocs) lookup.set(h.name, h);
  const sourcePaths: string[] = [];
  const sourceContents: SourceContent[] = [];
  for (const src of srcs) {
    const h = parseHeredocSafe(src);
    if (h) {
      let content = lookup.get(h.name)?.content ?? '';
      if (h.chomp) content = chompHeredocContent(content);
      sourceContents.push({ path: h.name, data: content, expand: h.expand });
    } else {
      sourcePaths.push(src);
    }
  }
  return { destPath: dest, sourcePaths, sourceContents };
}

function parseHeredocSafe(s: string): Heredoc | undefined {
  try {
    return parseHeredoc(s);
  } catch {
    return undefined;
  }
}

function parseAdd(req: Req): AddInstruction {
  if (req.args.length < 2) fail('ADD requires at least two arguments, but only one was provided. Destination could not be determined');
  const f = req.flags;
  const chown = f.addString('chown', '');
  const chmod = f.addString('chmod', '');
  const link = f.addBool('link', false);
  const keepGit = f.addBool('keep-git-dir', false);
  const checksum = f.addString('checksum', '');
  const unpack = f.addBool('unpack', false);
  const excludes = f.addStrings('exclude');
  f.parse();
  const sd = parseSourcesAndDest(req, 'ADD');
  return {
    kind: 'ADD',
    ...req.base,
    ...sd,
    chown: chown.value,
    chmod: chmod.value,
    link: link.value === 'true',
    ...(f.used.has('keep-git-dir') ? { keepGitDir: keepGit.value === 'true' } : {}),
    checksum: checksum.value,
    ...(f.used.has('unpack') ? { unpack: unpack.value === 'true' } : {}),
    excludes: excludes.values,
  };
}

function parseCopy(req: Req): CopyInstruction {
  if (req.args.length < 2) fail('COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  const f = req.flags;
  const chown = f.addString('chown', '');
  const from = f.addString('from', '');
  const chmod = f.addString('chmod', '');
  const link = f.addBool('link', false);
  const excludes = f.addStrings('exclude');
  const parents = f.addBool('parents', false);
  f.parse();
  const sd = parseSourcesAndDest(req, 'COPY');
  return {
    kind: 'COPY',
    ...req.base,
    ...sd,
    from: from.value,
    chown: chown.value,
    chmod: chmod.value,
    link: link.value === 'true',
    parents: parents.value === 'true',
    excludes: excludes.values,
  };
}

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(req: Req): FromInstruction {
  const args = req.args;
  let name = '';
  if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
    name = args[2]!.toLowerCase();
    if (!VALID_STAGE_NAME.test(name)) {
      fail(`invalid name for build stage: ${goQuote(args[2]!)}, name can't start with a number or contain symbols`, args[2]);
    }
  } else if (args.length !== 1) {
    fail('FROM requires either one or three arguments');
  }
  const platform = req.flags.addString('platform', '');
  req.flags.parse();
  return { kind: 'FROM', ...req.base, original: req.node.original.trim(), baseName: args[0]!, name, platform: platform.value };
}

function parseOnbuild(req: Req): OnbuildInstruction {
  if (req.args.length === 0) fail('ONBUILD requires at least one argument');
  req.flags.parse();
  const trigger = req.args[0]!.trim().toUpperCase();
  if (trigger === 'ONBUILD') fail('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', req.args[0]);
  if (trigger === 'MAINTAINER' || trigger === 'FROM') fail(`${trigger} isn't allowed as an ONBUILD trigger`, req.args[0]);
  let expression = req.node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of req.heredocs) expression += '\n' + h.content + h.name;
  return { kind: 'ONBUILD', ...req.base, expression };
}

function parseWorkdir(req: Req): WorkdirInstruction {
  if (req.args.length !== 1) fail('WORKDIR requires exactly one argument');
  req.flags.parse();
  return { kind: 'WORKDIR', ...req.base, path: req.args[0]! };
}

function parseCmdLine(req: Req, emptyAsNil: boolean): ShellDependantCmdLine {
  if (req.cmd.toLowerCase() !== 'run') req.flags.parse();
  const files = req.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp }));
  let args = handleJsonArgs(req.args, req.node.json);
  if (emptyAsNil && args.length === 0) args = [];
  return { cmdLine: args, files, prependShell: !req.node.json };
}

function handleJsonArgs(args: readonly string[], json: boolean): string[] {
  if (args.length === 0) return [];
  if (json) return [...args];
  return [args.join(' ')];
}

const NETWORKS = new Set(['default', 'none', 'host']);
const SECURITY = new Set(['sandbox', 'insecure']);

function parseRun(req: Req): RunInstruction {
  const f = req.flags;
  const mount = f.addStrings('mount');
  const network = f.addString('network', 'default');
  const security = f.addString('security', 'sandbox');
  f.parse();
  const cl = parseCmdLine(req, false);
  if (!NETWORKS.has(network.value)) fail(`invalid network mode ${goQuote(network.value)}`, '--network', 'INVALID_FLAG');
  if (!SECURITY.has(security.value)) fail(`security ${goQuote(security.value)} is not valid`, '--security', 'INVALID_FLAG');
  for (const m of mount.values) {
    // Values with variables are validated when they are expanded (builder/convert); the rest now.
    parseMount(m, m.includes('$') ? undefined : (s) => s);
  }
  return {
    kind: 'RUN',
    ...req.base,
    ...cl,
    mounts: mount.values,
    network: network.value,
    security: security.value,
    flagsUsed: [...f.used].sort(),
  };
}

const MIN_INTERVAL_NS = 1_000_000;

function parseOptInterval(name: string, v: string): number | undefined {
  if (v === '') return undefined;
  const d = parseGoDuration(v);
  if (d === 0) return undefined;
  if (d < MIN_INTERVAL_NS) fail(`Interval ${goQuote(name)} cannot be less than 1ms`, `--${name}`, 'INVALID_FLAG');
  return d;
}

function parseHealthcheck(req: Req): HealthcheckInstruction {
  if (req.args.length === 0) fail('HEALTHCHECK requires at least one argument');
  let typ = req.args[0]!.toUpperCase();
  const args = req.args.slice(1);
  if (typ === 'NONE') {
    if (args.length !== 0) fail('HEALTHCHECK NONE takes no arguments');
    return { kind: 'HEALTHCHECK', ...req.base, health: { test: [typ] } };
  }
  const f = req.flags;
  const interval = f.addString('interval', '');
  const timeout = f.addString('timeout', '');
  const startPeriod = f.addString('start-period', '');
  const startInterval = f.addString('start-interval', '');
  const retries = f.addString('retries', '');
  f.parse();
  if (typ !== 'CMD') fail(`Unknown type ${goQuote(typ)} in HEALTHCHECK (try CMD)`, req.args[0]);
  const cmd = handleJsonArgs(args, req.node.json);
  if (cmd.length === 0) fail('Missing command after HEALTHCHECK CMD');
  if (!req.node.json) typ = 'CMD-SHELL';
  const health: { -readonly [K in keyof HealthConfig]: HealthConfig[K] } = { test: [typ, ...cmd] };
  const iv = parseOptInterval('interval', interval.value);
  if (iv !== undefined) health.interval = iv;
  const to = parseOptInterval('timeout', timeout.value);
  if (to !== undefined) health.timeout = to;
  const sp = parseOptInterval('start-period', startPeriod.value);
  if (sp !== undefined) health.startPeriod = sp;
  const si = parseOptInterval('start-interval', startInterval.value);
  if (si !== undefined) health.startInterval = si;
  if (retries.value !== '') {
    const r = parseGoInt32(retries.value);
    if (r < 0) fail(`--retries cannot be negative (${r})`, '--retries', 'INVALID_FLAG');
    health.retries = r;
  }
  return { kind: 'HEALTHCHECK', ...req.base, health };
}

function parseGoInt32(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s)) fail(`strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`, s, 'INVALID_FLAG');
  const n = Number.parseInt(s, 10);
  if (n > 2147483647 || n < -2147483648) fail(`strconv.ParseInt: parsing ${goQuote(s)}: value out of range`, s, 'INVALID_FLAG');
  return n;
}

function parseExpose(req: Req): ExposeInstruction {
  if (req.args.length === 0) fail('EXPOSE requires at least one argument');
  req.flags.parse();
  return { kind: 'EXPOSE', ...req.base, ports: [...req.args].sort(goStringCompare) };
}

function goStringCompare(a: string, b: string): number {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return Buffer.compare(ba, bb);
}

function parseUser(req: Req): UserInstruction {
  if (req.args.length !== 1) fail('USER requires exactly one argument');
  req.flags.parse();
  return { kind: 'USER', ...req.base, user: req.args[0]! };
}

function parseVolume(req: Req): VolumeInstruction {
  if (req.args.length === 0) fail('VOLUME requires at least one argument');
  req.flags.parse();
  const volumes: string[] = [];
  for (const v of req.args) {
    const t = v.trim();
    if (t === '') fail('VOLUME specified can not be an empty string');
    volumes.push(t);
  }
  return { kind: 'VOLUME', ...req.base, volumes };
}

function parseStopSignal(req: Req): StopSignalInstruction {
  if (req.args.length !== 1) fail('STOPSIGNAL requires exactly one argument');
  return { kind: 'STOPSIGNAL', ...req.base, signal: req.args[0]! };
}

function parseArg(req: Req): ArgInstruction {
  if (req.args.length < 1) fail('ARG requires at least one argument');
  const args: KeyValuePairOptional[] = req.args.map((a) => {
    const i = a.indexOf('=');
    if (i < 0) return { key: a };
    if (i === 0) fail('ARG names can not be blank', a);
    return { key: a.slice(0, i), value: a.slice(i + 1) };
  });
  return { kind: 'ARG', ...req.base, args };
}

function parseShell(req: Req): ShellInstruction {
  req.flags.parse();
  const shell = handleJsonArgs(req.args, req.node.json);
  if (shell.length === 0) fail('SHELL requires at least one argument');
  if (!req.node.json) fail(`SHELL requires the arguments to be in JSON form`);
  return { kind: 'SHELL', ...req.base, shell };
}

// === RUN --mount ===

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARE_MODES: readonly ShareMode[] = ['shared', 'private', 'locked'];
const MOUNT_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/**
 * Parses one `--mount` value (CSV of key=value) with buildkit's rules and
 * defaults: type defaults to bind; bind/secret/ssh are read-only unless rw
 * is given, cache/tmpfs read-write; mode/uid/gid only for cache, secret, ssh.
 * `expand` expands each value; when undefined only `from` is checked (no
 * variables allowed there) and a partial mount is returned.
 */
export function parseMount(val: string, expand?: (word: string) => string): Mount {
  const fields = parseCsvFields(val);
  const m: { -readonly [K in keyof Mount]: Mount[K] } = {
    type: 'bind', from: '', source: '', target: '', readOnly: false, sizeLimit: 0, cacheId: '', cacheSharing: '', required: false,
  };
  let roAuto = true;
  const text = '--mount';
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (!expand) continue;
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          fail(`unexpected key '${key}' for mount type '${m.type}'`, text, 'INVALID_FLAG');
        // falls through (fail never returns)
        default:
          fail(`invalid field '${field}' must be a key=value pair`, text, 'INVALID_FLAG');
      }
    }
    if (expand) {
      value = expand(value);
    } else if (key === 'from') {
      const i = value.indexOf('$');
      if (i !== -1 && i !== value.length - 1) fail(`'${key}' doesn't support variable expansion, define alias stage instead`, text, 'INVALID_FLAG');
    } else {
      continue;
    }
    switch (key) {
      case 'type': {
        const v = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(v)) {
          const s = suggest(value, MOUNT_TYPES, true);
          throw new DockerfileError('INVALID_FLAG', `unsupported mount type ${goQuote(value)}`, { text, ...(s ? { suggestion: s } : {}) });
        }
        m.type = v;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = parseGoBool(value, key);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readOnly = !parseGoBool(value, key);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') fail(`unexpected key '${key}' for mount type '${m.type}'`, text, 'INVALID_FLAG');
        m.required = parseGoBool(value, key);
        break;
      case 'size':
        if (m.type !== 'tmpfs') fail(`unexpected key '${key}' for mount type '${m.type}'`, text, 'INVALID_FLAG');
        m.sizeLimit = ramInBytes(value, key);
        break;
      case 'id':
        m.cacheId = value;
        break;
      case 'sharing': {
        const v = value.toLowerCase() as ShareMode;
        if (!SHARE_MODES.includes(v)) {
          const s = suggest(value, SHARE_MODES, true);
          throw new DockerfileError('INVALID_FLAG', `unsupported sharing value ${goQuote(value)}`, { text, ...(s ? { suggestion: s } : {}) });
        }
        m.cacheSharing = v;
        break;
      }
      case 'mode':
        if (!/^[0-7]+$/.test(value) || Number.parseInt(value, 8) > 0xffffffff) fail(`invalid value ${value} for mode`, text, 'INVALID_FLAG');
        m.mode = Number.parseInt(value, 8);
        break;
      case 'uid':
      case 'gid': {
        if (!/^[0-9]+$/.test(value) || Number(value) > 0xffffffff) fail(`invalid value ${value} for ${key}`, text, 'INVALID_FLAG');
        m[key] = Number(value);
        break;
      }
      case 'env':
        m.env = value;
        break;
      default: {
        const s = suggest(key, MOUNT_KEYS, true);
        throw new DockerfileError('INVALID_FLAG', `unexpected key '${key}' in '${field}'`, { text, ...(s ? { suggestion: s } : {}) });
      }
    }
  }
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) fail(`mode not allowed for ${goQuote(m.type)} type mounts`, text, 'INVALID_FLAG');
    if (m.uid !== undefined) fail(`uid not allowed for ${goQuote(m.type)} type mounts`, text, 'INVALID_FLAG');
    if (m.gid !== undefined) fail(`gid not allowed for ${goQuote(m.type)} type mounts`, text, 'INVALID_FLAG');
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret' && expand) {
    if (m.from !== '') fail('secret mount should not have a from', text, 'INVALID_FLAG');
    if (m.cacheSharing !== '') fail('secret mount should not define sharing', text, 'INVALID_FLAG');
    if (m.source === '' && m.target === '' && m.cacheId === '') fail('invalid secret mount. one of source, target required', text, 'INVALID_FLAG');
    if (m.source !== '' && m.cacheId !== '') fail("both source and id can't be set", text, 'INVALID_FLAG');
  }
  if (m.cacheSharing !== '' && m.type !== 'cache') fail(`invalid cache sharing set for ${m.type} mount`, text, 'INVALID_FLAG');
  return m;
}

/** Go strconv.ParseBool. */
function parseGoBool(v: string, key: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  fail(`invalid value for ${key}: ${v}`, '--mount', 'INVALID_FLAG');
}

/** docker/go-units RAMInBytes: `64m`, `1.5GiB`, `512` (binary multipliers). */
export function ramInBytes(v: string, key = 'size'): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) fail(`invalid value for ${key}: ${v}`, '--mount', 'INVALID_FLAG');
  const n = Number(m[1]!);
  if (Number.isNaN(n)) fail(`invalid value for ${key}: ${v}`, '--mount', 'INVALID_FLAG');
  const exp = m[2] ? 'kmgtp'.indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.trunc(n * 1024 ** exp);
}

/** CSV fields of one record (encoding/csv rules: quoted fields with "" escapes). */
function parseCsvFields(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  if (s === '') return [];
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) fail(`failed to parse csv mounts: extraneous or missing " in quoted-field`, '--mount', 'INVALID_FLAG');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',') fail(`failed to parse csv mounts: extraneous or missing " in quoted-field`, '--mount', 'INVALID_FLAG');
    } else {
      const j = s.indexOf(',', i);
      field = j < 0 ? s.slice(i) : s.slice(i, j);
      if (field.includes('"')) fail(`failed to parse csv mounts: bare " in non-quoted-field`, '--mount', 'INVALID_FLAG');
      i = j < 0 ? s.length : j;
    }
    out.push(field);
    if (i >= s.length) break;
    i++; // skip ','
    if (i >= s.length) {
      out.push('');
      break;
    }
  }
  return out;
}

// === Go time.ParseDuration ===

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go `time.ParseDuration`, in nanoseconds. Throws INVALID_FLAG with Go's message. */
export function parseGoDuration(orig: string): number {
  let s = orig;
  let neg = false;
  const bad = (): never => fail(`time: invalid duration ${goQuote(orig)}`, orig, 'INVALID_FLAG');
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') bad();
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const intPart = m[1]!;
    const frac = m[2];
    if (intPart === '' && (frac === undefined || frac === '')) bad();
    s = s.slice(m[0].length);
    const u = /^[^0-9.]*/.exec(s)![0];
    if (u === '') fail(`time: missing unit in duration ${goQuote(orig)}`, orig, 'INVALID_FLAG');
    const mult = UNITS[u];
    if (mult === undefined) fail(`time: unknown unit ${goQuote(u)} in duration ${goQuote(orig)}`, orig, 'INVALID_FLAG');
    s = s.slice(u.length);
    total += Number(intPart || '0') * mult + (frac ? Number('0.' + frac) * mult : 0);
    if (total > 9223372036854775807) bad();
  }
  total = Math.trunc(total);
  return neg ? -total : total;
}
