import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { UsageError, TsbuildError } from '../../util/errors.js';
import type { RunOptions } from '../../../runtime/run.js';
import { parseGoDuration, type HealthOverrides } from '../../../runtime/health/health.js';
import { parseRestartPolicy, type RestartPolicy } from '../../../runtime/monitor/restart.js';
import { parseMountFlag, parseVolumeFlag, type MountRequest } from '../../../runtime/volumes/mount-spec.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Docker sizes: plain bytes or a number with b/k/m/g (binary units); `-1` for memory-swap. */
export function parseSize(v: string, flag: string): number {
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw new UsageError('INVALID_ARGUMENT', `invalid size ${JSON.stringify(v)} for ${flag}`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/** `-e KEY=VALUE` as is; `-e KEY` takes the value from this environment, or is dropped when unset (docker). */
export function resolveEnv(entries: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.startsWith('=') || e === '') throw new UsageError('INVALID_ARGUMENT', `invalid environment variable ${JSON.stringify(e)}`);
    if (e.includes('=')) out.push(e);
    else if (env[e] !== undefined) out.push(`${e}=${env[e]}`);
  }
  return out;
}

/** Lines of an --env-file: KEY=VALUE or KEY, blank lines and # comments skipped. */
export function readEnvFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError('INVALID_ARGUMENT', `reading env file ${path}`, { cause: e });
  }
  return text.split(/\r?\n/).map((l) => l.replace(/^\s+/, '')).filter((l) => l && !l.startsWith('#'));
}

/** `-v /host:/ctr[:ro|rw]` for library callers' host binds; the CLI parses -v with {@link parseMounts} (volumes too). */
export function parseVolume(v: string): { source: string; destination: string; readonly: boolean } {
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new UsageError('INVALID_ARGUMENT', `invalid volume ${JSON.stringify(v)}: expected /host/path:/container/path[:ro]`);
  if (!parts[0].startsWith('/')) throw new UsageError('INVALID_ARGUMENT', `invalid volume ${JSON.stringify(v)}: named volumes are not supported, the source must be an absolute host path`);
  const mode = parts[2] ?? 'rw';
  if (!mode.split(',').every((o) => o === 'ro' || o === 'rw')) throw new UsageError('INVALID_ARGUMENT', `invalid volume mode ${JSON.stringify(mode)} in ${JSON.stringify(v)}: use ro or rw`);
  return { source: parts[0], destination: parts[1], readonly: mode.split(',').includes('ro') };
}

/** `-v [SRC:]DST[:OPTS]` and `--mount k=v,…` in docker's syntax (binds, named and anonymous volumes, tmpfs). */
export function parseMounts(volumes: readonly string[], mounts: readonly string[]): MountRequest[] {
  try {
    return [...volumes.map(parseVolumeFlag), ...mounts.map(parseMountFlag)];
  } catch (e) {
    throw new UsageError('INVALID_ARGUMENT', (e as Error).message, { cause: e });
  }
}

/** `--tmpfs /dir[:opt,opt]`. */
export function parseTmpfs(v: string): { destination: string; options: string[] } {
  const i = v.indexOf(':');
  const destination = i < 0 ? v : v.slice(0, i);
  const options = i < 0 ? [] : v.slice(i + 1).split(',').filter(Boolean);
  if (!destination.startsWith('/')) throw new UsageError('INVALID_ARGUMENT', `invalid tmpfs ${JSON.stringify(v)}: the destination must be absolute`);
  return { destination, options };
}

interface Flags {
  rm?: boolean; detach?: boolean; interactive?: boolean; tty?: boolean;
  env?: string[]; envFile?: string[]; workdir?: string; user?: string; entrypoint?: string; name?: string; hostname?: string;
  volume?: string[]; mount?: string[]; tmpfs?: string[]; readOnly?: boolean; memory?: string; memorySwap?: string; cpus?: string; cpuShares?: string; cpusetCpus?: string; pidsLimit?: string;
  logOpt?: string[]; network: string; networkGiven?: boolean; publish?: string[]; publishAll?: boolean; expose?: string[];
  dns?: string[]; dnsSearch?: string[]; dnsOption?: string[]; addHost?: string[]; domainname?: string; networkAlias?: string[]; cgroupParent?: string; capAdd?: string[]; capDrop?: string[]; securityOpt?: string[]; privileged?: boolean; init?: boolean;
  healthCmd?: string; healthInterval?: string; healthTimeout?: string; healthRetries?: string; healthStartPeriod?: string; healthcheck?: boolean; restart?: string;
}

/** --health-* and --restart (applied by the monitor of a detached container). Throws UsageError. */
export function monitorOptionsFromFlags(f: Flags): Pick<RunOptions, 'health' | 'restartPolicy'> {
  const dur = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined;
    const ns = parseGoDuration(v);
    if (ns === undefined || ns < 0) throw new UsageError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(v)} for ${flag}: e.g. 30s, 500ms, 1m30s`);
    return ns;
  };
  if (f.healthRetries !== undefined && !/^\d+$/.test(f.healthRetries)) throw new UsageError('INVALID_ARGUMENT', `invalid value ${JSON.stringify(f.healthRetries)} for --health-retries`);
  const health: HealthOverrides = {
    ...(f.healthCmd !== undefined ? { cmd: f.healthCmd } : {}),
    ...(f.healthInterval !== undefined ? { intervalNs: dur(f.healthInterval, '--health-interval')! } : {}),
    ...(f.healthTimeout !== undefined ? { timeoutNs: dur(f.healthTimeout, '--health-timeout')! } : {}),
    ...(f.healthStartPeriod !== undefined ? { startPeriodNs: dur(f.healthStartPeriod, '--health-start-period')! } : {}),
    ...(f.healthRetries !== undefined ? { retries: Number(f.healthRetries) } : {}),
    ...(f.healthcheck === false ? { disable: true } : {}),
  };
  if (health.disable && health.cmd !== undefined) throw new UsageError('INVALID_ARGUMENT', '--no-healthcheck conflicts with --health-cmd');
  let restartPolicy: RestartPolicy | undefined;
  if (f.restart !== undefined && f.restart !== '') {
    try {
      restartPolicy = parseRestartPolicy(f.restart);
    } catch (e) {
      throw new UsageError('INVALID_ARGUMENT', (e as Error).message);
    }
    if (restartPolicy.Name !== 'no' && f.rm) throw new UsageError('INVALID_ARGUMENT', 'conflicting options: --restart and --rm');
    if (restartPolicy.Name !== 'no' && !f.detach) throw new UsageError('NOT_SUPPORTED', '--restart needs -d: the restart policy is applied by the monitor of a detached container');
  }
  return { health, ...(restartPolicy ? { restartPolicy } : {}) };
}

/** Turns parsed flags into RunOptions (everything but io and callbacks). Throws UsageError. */
export function runOptionsFromFlags(root: string, image: string, cmd: string[], f: Flags): RunOptions {
  const env = resolveEnv([...(f.envFile ?? []).flatMap(readEnvFile), ...(f.env ?? [])]);
  if (f.network === 'bridge' || f.network === 'default' || f.network.startsWith('container:')) {
    throw new UsageError('NOT_SUPPORTED', `network mode ${JSON.stringify(f.network)} is not supported: use --network none, host, tsbuild (the default CNI bridge) or a CNI network name`);
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(f.network)) throw new UsageError('INVALID_ARGUMENT', `invalid network name ${JSON.stringify(f.network)}`);
  const publish = (f.publish ?? []).map((p) => {
    // [ip:]host:ctr, or ctr / ip::ctr for an ephemeral host port (docker)
    const m = /^(?:(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d*):)?(\d+)(?:\/(tcp|udp))?$/.exec(p);
    const hostPort = Number(m?.[2] || 0);
    const containerPort = Number(m?.[3]);
    if (!m || (m[1] && m[2] === undefined) || hostPort > 65535 || !containerPort || containerPort > 65535) throw new UsageError('INVALID_ARGUMENT', `invalid published port ${JSON.stringify(p)}: expected [[ip:]hostPort:]containerPort[/tcp|udp]`);
    return { ...(m[1] ? { hostIP: m[1] } : {}), hostPort, containerPort, protocol: (m[4] ?? 'tcp') as 'tcp' | 'udp' };
  });
  for (const e of f.expose ?? []) {
    if (!/^\d{1,5}(\/(tcp|udp))?$/.test(e) || !Number(e.split('/')[0]) || Number(e.split('/')[0]) > 65535) throw new UsageError('INVALID_ARGUMENT', `invalid --expose ${JSON.stringify(e)}: expected PORT[/tcp|udp]`);
  }
  const isIP = (s: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));
  for (const d of f.dns ?? []) if (!isIP(d)) throw new UsageError('INVALID_ARGUMENT', `invalid --dns ${JSON.stringify(d)}: expected an IP address`);
  const addHosts = (f.addHost ?? []).map((h) => {
    const i = h.search(/[:=]/);
    const name = i < 0 ? '' : h.slice(0, i);
    const ip = i < 0 ? '' : h.slice(i + 1);
    if (!/^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/.test(name) || !(ip === 'host-gateway' || isIP(ip))) throw new UsageError('INVALID_ARGUMENT', `invalid --add-host ${JSON.stringify(h)}: expected name:ip or name:host-gateway`);
    return { name, ip };
  });
  for (const n of [...(f.hostname ? [f.hostname] : []), ...(f.domainname ? [f.domainname] : []), ...(f.networkAlias ?? [])]) {
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/.test(n)) throw new UsageError('INVALID_ARGUMENT', `invalid host name ${JSON.stringify(n)}`);
  }
  let logRotation: { maxSize: number; maxFiles: number } | undefined;
  for (const o of f.logOpt ?? []) {
    const [k, v] = [o.slice(0, o.indexOf('=') < 0 ? o.length : o.indexOf('=')), o.slice(o.indexOf('=') + 1)];
    logRotation ??= { maxSize: 10 * 1024 * 1024, maxFiles: 3 };
    if (k === 'max-size') logRotation.maxSize = v === '-1' ? Number.MAX_SAFE_INTEGER : parseSize(v, '--log-opt max-size');
    else if (k === 'max-file' && /^[1-9]\d*$/.test(v)) logRotation.maxFiles = Number(v);
    else throw new UsageError('INVALID_ARGUMENT', `invalid log option ${JSON.stringify(o)}: max-size=SIZE or max-file=N`);
    if (logRotation.maxSize <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid log option ${JSON.stringify(o)}: the size must be positive`);
  }
  // -p without --network: the default CNI bridge (docker's default is its bridge too)
  const network = (publish.length || f.publishAll) && !f.networkGiven ? 'tsbuild' : f.network;
  let seccomp: RunOptions['seccomp'] = 'default';
  let noNewPrivileges = false;
  for (const o of f.securityOpt ?? []) {
    const [k, v] = o.includes('=') ? [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] : o.includes(':') ? [o.slice(0, o.indexOf(':')), o.slice(o.indexOf(':') + 1)] : [o, undefined];
    if (k === 'seccomp') {
      if (!v) throw new UsageError('INVALID_ARGUMENT', 'seccomp security option needs a value: unconfined or a profile file');
      seccomp = v === 'unconfined' ? 'unconfined' : { file: v };
    } else if (k === 'no-new-privileges') {
      if (v !== undefined && v !== 'true' && v !== 'false') throw new UsageError('INVALID_ARGUMENT', `invalid no-new-privileges value ${JSON.stringify(v)}`);
      noNewPrivileges = v !== 'false';
    } else throw new UsageError('NOT_SUPPORTED', `security option ${JSON.stringify(o)} is not supported`);
  }
  const resources: NonNullable<RunOptions['resources']> = {};
  if (f.memory !== undefined) resources.memory = parseSize(f.memory, '--memory');
  if (f.memorySwap !== undefined) resources.memorySwap = parseSize(f.memorySwap, '--memory-swap');
  if (f.cpus !== undefined) {
    const n = Number(f.cpus);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid value ${JSON.stringify(f.cpus)} for --cpus`);
    resources.cpus = n;
  }
  if (f.cpuShares !== undefined) {
    if (!/^\d+$/.test(f.cpuShares)) throw new UsageError('INVALID_ARGUMENT', `invalid value ${JSON.stringify(f.cpuShares)} for --cpu-shares`);
    resources.cpuShares = Number(f.cpuShares);
  }
  if (f.cpusetCpus !== undefined) resources.cpusetCpus = f.cpusetCpus;
  if (f.pidsLimit !== undefined) {
    if (!/^-?\d+$/.test(f.pidsLimit)) throw new UsageError('INVALID_ARGUMENT', `invalid value ${JSON.stringify(f.pidsLimit)} for --pids-limit`);
    resources.pidsLimit = Number(f.pidsLimit);
  }
  return {
    root, image,
    ...(cmd.length ? { cmd } : {}),
    ...(f.entrypoint !== undefined ? { entrypoint: f.entrypoint === '' ? [] : [f.entrypoint] } : {}),
    env,
    ...(f.workdir ? { workdir: f.workdir } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.name ? { name: f.name } : {}),
    ...(f.hostname ? { hostname: f.hostname } : {}),
    mounts: parseMounts(f.volume ?? [], f.mount ?? []),
    tmpfs: (f.tmpfs ?? []).map(parseTmpfs),
    readOnly: !!f.readOnly,
    resources,
    capAdd: f.capAdd ?? [], capDrop: f.capDrop ?? [],
    privileged: !!f.privileged,
    network,
    ...(publish.length ? { publish } : {}),
    ...(f.publishAll ? { publishAll: true } : {}),
    ...(f.expose?.length ? { expose: f.expose } : {}),
    ...(f.dns?.length ? { dns: f.dns } : {}),
    ...(f.dnsSearch?.length ? { dnsSearch: f.dnsSearch } : {}),
    ...(f.dnsOption?.length ? { dnsOptions: f.dnsOption } : {}),
    ...(addHosts.length ? { addHosts } : {}),
    ...(f.domainname ? { domainname: f.domainname } : {}),
    ...(f.networkAlias?.length ? { networkAliases: f.networkAlias } : {}),
    ...(logRotation ? { logRotation } : {}),
    seccomp, noNewPrivileges,
    init: !!f.init, rm: !!f.rm, detach: !!f.detach,
    ...(f.cgroupParent ? { cgroupParent: f.cgroupParent } : {}),
  };
}

/** Docker's statuses for a failed `run`: 125 setup failed, 126 command not executable, 127 command not found. */
function withRunStatus(e: unknown): unknown {
  if (e instanceof TsbuildError && !(e instanceof UsageError) && (e as { exitCode?: number }).exitCode === undefined) {
    const errno = (e as { errno?: string }).errno;
    (e as { exitCode?: number }).exitCode = e.code === 'EXEC_FAILED' ? (errno === 'ENOENT' ? 127 : 126) : 125;
  }
  return e;
}

/**
 * Makes `image` available in the local store as `docker run` does: with policy `missing` it is
 * pulled through the registry client only when the store lacks it, `always` pulls first, `never`
 * leaves the "unable to find image" error to the runtime. The registry modules load only on a pull.
 */
async function ensureImage(c: CliContext, image: string, policy: string): Promise<void> {
  if (!['missing', 'always', 'never'].includes(policy)) throw new UsageError('INVALID_ARGUMENT', `--pull: want missing, always or never, got ${policy}`);
  if (policy === 'never') return;
  if (policy === 'missing') {
    const { ImageStore } = await import('../../oci/store/image-store.js');
    const store = await ImageStore.open(c.root, { logger: c.logger });
    try {
      await store.resolve(image);
      return;
    } catch (e) {
      if (!(e instanceof TsbuildError && e.code === 'NOT_FOUND')) throw e;
    }
    const { parseReference } = await import('../../oci/reference.js');
    try {
      parseReference(image);
    } catch {
      return; // not a reference (e.g. an unknown id prefix): the runtime reports it as not found
    }
    c.stderr.write(`Unable to find image '${image}' locally\n`);
  }
  const { pullImage } = await import('./pull.js');
  try {
    await pullImage(c, image, { quiet: false });
  } catch (e) {
    // docker run exits 125 when the image can be neither found nor pulled
    const what = policy === 'missing' ? `unable to find image ${image} in the local store, and pulling it failed` : `pulling ${image} failed`;
    throw Object.assign(new TsbuildError('IMAGE_NOT_FOUND', what, { cause: e }), { exitCode: 125 });
  }
}

/** `tsbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  // Everything after IMAGE belongs to the container's command, as with docker.
  (cmd.parent as Command | null)?.enablePositionalOptions();
  cmd
    .passThroughOptions()
    .argument('<image>', 'image name or id in the local store')
    .argument('[command...]', 'command and arguments (default: the image entrypoint and cmd)')
    .option('--rm', 'remove the container when it exits (otherwise it stays listed in ps -a until rm)')
    .option('-d, --detach', 'run in the background under a monitor process and print the container id')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid, optionally with group name or gid')
    .option('--entrypoint <cmd>', "override the image's entrypoint ('' clears it)")
    .option('--name <name>', 'container name')
    .option('--hostname <name>', 'container hostname (default: the first 12 characters of the id)')
    .option('-v, --volume <[src:]ctr[:opts]>', 'bind mount a host path (/src), mount a named volume (name, created when missing) or an anonymous volume (no src); opts: ro, rw, nocopy, rprivate|private|rshared|shared|rslave|slave (repeatable)', collect)
    .option('--mount <k=v,...>', 'type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…][,bind-nonrecursive][,volume-nocopy][,volume-label=k=v][,tmpfs-size=…][,tmpfs-mode=…] (repeatable)', collect)
    .option('--tmpfs <dir[:opts]>', 'mount a tmpfs (repeatable)', collect)
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-m, --memory <bytes>', 'memory limit (e.g. 64m)')
    .option('--memory-swap <bytes>', 'memory plus swap limit; -1 for unlimited swap')
    .option('--cpus <n>', 'number of CPUs (CFS quota)')
    .option('--cpu-shares <n>', 'relative CPU weight (2-262144)')
    .option('--cpuset-cpus <list>', 'CPUs the container may use (0-3, 0,1)')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--network <mode>', 'none (default; tsbuild with -p), host, tsbuild (CNI bridge tsbuild0) or a CNI network name', 'none')
    .option('--log-opt <k=v>', 'json-file log cap: max-size=SIZE (default 10m, -1 unlimited), max-file=N (default 3) (repeatable)', collect)
    .option('-p, --publish <[ip:]host:ctr[/proto]>', 'publish a container port on the host; without a host port, an ephemeral one (repeatable)', collect)
    .option('-P, --publish-all', 'publish every EXPOSEd port (and --expose) on an ephemeral host port')
    .option('--expose <port[/proto]>', 'expose a port without publishing it (published by -P) (repeatable)', collect)
    .option('--dns <ip>', 'nameserver for /etc/resolv.conf instead of the host\'s (repeatable)', collect)
    .option('--dns-search <domain>', "search domain for /etc/resolv.conf ('.' for none) (repeatable)", collect)
    .option('--dns-option <opt>', 'resolver option for /etc/resolv.conf (repeatable)', collect)
    .option('--add-host <name:ip>', 'add a line to /etc/hosts; ip host-gateway is the network gateway (repeatable)', collect)
    .option('--domainname <name>', 'container NIS domain name')
    .option('--network-alias <name>', 'another name containers on the same user network reach this one by (repeatable)', collect)
    .option('--cgroup-parent <path>', "parent of the container's cgroup, relative to tsbuild's own (default: tsbuild)")
    .option('--cap-add <cap>', 'add a capability (repeatable)', collect)
    .option('--cap-drop <cap>', 'drop a capability (repeatable)', collect)
    .option('--security-opt <opt>', 'seccomp=unconfined|FILE, no-new-privileges (repeatable)', collect)
    .option('--privileged', 'all capabilities, no seccomp, no masked paths')
    .option('--init', 'run an init as PID 1 that reaps zombies and forwards signals')
    .option('--pull <policy>', 'missing (pull when not in the local store), always or never', 'missing')
    .option('--health-cmd <cmd>', 'healthcheck command, run through /bin/sh -c in the container (detached containers)')
    .option('--health-interval <duration>', 'time between healthchecks (default 30s)')
    .option('--health-timeout <duration>', 'time a healthcheck may take (default 30s)')
    .option('--health-retries <n>', 'consecutive failures that make the container unhealthy (default 3)')
    .option('--health-start-period <duration>', 'time after start when failures do not count (default 0s)')
    .option('--no-healthcheck', "disable the image's HEALTHCHECK")
    .option('--restart <policy>', 'no, on-failure[:max-retries], always or unless-stopped (detached containers; default no)')
    .action(async (image: string, command: string[], flags: Flags & { pull: string }) => {
      const c = ctx();
      await ensureImage(c, image, flags.pull);
      const opts = runOptionsFromFlags(c.root, image, command, { ...flags, networkGiven: cmd.getOptionValueSource('network') === 'cli' });
      const monitorOpts = monitorOptionsFromFlags(flags);
      const { runImage } = await import('../../../runtime/run.js');
      if (flags.detach) {
        try {
          const r = await runImage({ ...opts, ...monitorOpts, openStdin: !!flags.interactive, io: { stdin: 'null', terminal: !!flags.tty }, logger: c.logger });
          c.stdout.write(`${r.id}\n`);
        } catch (e) {
          throw withRunStatus(e);
        }
        return;
      }
      // a terminal container gets our keystrokes raw; the pty in the container does the line editing
      const raw = !!flags.tty && !!flags.interactive && process.stdin.isTTY && c.stdout.isTTY;
      if (raw) process.stdin.setRawMode(true);
      const abort = new AbortController();
      let forward: ((s: NodeJS.Signals) => Promise<void>) | undefined;
      const onSignal = (s: NodeJS.Signals) => {
        if (forward) void forward(s).catch(() => undefined);
        else abort.abort();
      };
      const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
      for (const s of sigs) process.on(s, onSignal);
      try {
        const r = await runImage({
          ...opts,
          io: { stdin: flags.interactive ? 'inherit' : 'null', stdout: 'inherit', stderr: 'inherit', terminal: !!flags.tty },
          logger: c.logger,
          signal: abort.signal,
          onStarted: (kill) => { forward = kill; },
        });
        if (r.exitCode !== 0) throw new ExitStatus(r.exitCode);
      } catch (e) {
        // interrupted during setup: everything made so far is removed; end like a shell would
        if (abort.signal.aborted && !(e instanceof ExitStatus)) throw new ExitStatus(130);
        throw withRunStatus(e);
      } finally {
        if (raw) process.stdin.setRawMode(false);
        for (const s of sigs) process.off(s, onSignal);
      }
    });
}
