import { posix } from 'node:path';
import type { ImageConfig } from '../../src/oci/config.js';
import { DEFAULT_SECCOMP_PROFILE } from '../seccomp/default-profile.js';
import { normalizeCap, profileToSpec, type SeccompProfile } from '../seccomp/profile.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  defaultDeviceRules,
  defaultMounts,
  defaultNamespaces,
} from './defaults.js';
import { RuntimeError } from './errors.js';
import type { LinuxResources, Mount, RuntimeSpec } from './types.js';
import { OCI_RUNTIME_SPEC_VERSION } from './types.js';
import { resolveUser } from './user.js';

/** A `-v host:ctr[:ro]` bind mount. */
export interface BindMount { source: string; destination: string; readonly?: boolean }
/** A `--tmpfs /dir[:opts]` mount; `options` are mount(8) tmpfs options (size=64m, mode=1777, exec ...). */
export interface TmpfsMount { destination: string; options?: string[] }

/** Docker-style resource flags, already parsed into numbers. */
export interface ResourceOptions {
  /** `--memory` in bytes. Minimum 6 MiB, like Docker. */
  memory?: number;
  /** `--memory-swap` in bytes (memory + swap), -1 for unlimited swap. Default 2 × memory. */
  memorySwap?: number;
  /** `--cpus`: becomes a CFS quota over a 100 ms period. */
  cpus?: number;
  /** `--cpu-shares` (relative weight, v1 shares). */
  cpuShares?: number;
  /** `--cpuset-cpus`. */
  cpusetCpus?: string;
  /** `--pids-limit`; 0 or negative means unlimited. */
  pidsLimit?: number;
  /** `--blkio-weight` 10..1000. */
  blkioWeight?: number;
}

/** Everything `specFromImage` needs besides the image config. All fields are plain data. */
export interface SpecOptions {
  /** Container id; the default hostname is its first 12 characters. */
  id: string;
  /** `root.path` (absolute, or relative to the bundle). */
  rootfs: string;
  /** Reads a file of the image rootfs (`/etc/passwd`, `/etc/group`); undefined when absent. */
  readImageFile?: (path: '/etc/passwd' | '/etc/group') => string | undefined;
  /** CMD override (the positional arguments after IMAGE). */
  cmd?: string[];
  /** `--entrypoint`; `[]` (from `--entrypoint ''`) clears the image's entrypoint. */
  entrypoint?: string[];
  /** `-e`/`--env-file` entries, `KEY=VALUE`, applied over the image's Env. */
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  readOnlyRootfs?: boolean;
  binds?: BindMount[];
  tmpfs?: TmpfsMount[];
  resources?: ResourceOptions;
  /** Number of host CPUs, to reject `--cpus` above it like Docker. */
  hostCpus?: number;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** The host's capability bounding set; requested capabilities outside it are dropped with a warning. */
  hostCapabilities?: readonly string[];
  /** Default `none`: a private network namespace with only loopback. */
  network?: 'none' | 'host';
  /** `default` (Docker's profile), `unconfined`, or a parsed profile file. */
  seccomp?: 'default' | 'unconfined' | SeccompProfile;
  /** Kernel release, for `minKernel` conditions of the seccomp profile. */
  kernelRelease?: string;
  noNewPrivileges?: boolean;
  /** Host files bind-mounted over /etc/hosts, /etc/hostname and /etc/resolv.conf, as Docker does. */
  etcFiles?: { hosts?: string; hostname?: string; resolvConf?: string };
  /** `--init`: host path of a static init (tini/catatonit compatible `init -- cmd`), bind-mounted at /sbin/docker-init. */
  initPath?: string;
  terminal?: boolean;
  /** `linux.cgroupsPath`. */
  cgroupsPath?: string;
  /** Receives warnings such as capabilities dropped because the host lacks them. */
  onWarning?: (message: string) => void;
}

const MIN_MEMORY = 6 * 1024 * 1024;
const CFS_PERIOD = 100_000;
/** Where Docker mounts its init. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

/** Appends `add` to `base`, replacing entries with the same key in place (Docker `ReplaceOrAppendEnvValues`). */
export function mergeEnv(base: readonly string[], add: readonly string[]): string[] {
  const out = [...base];
  for (const e of add) {
    const k = envKey(e);
    const i = out.findIndex((x) => envKey(x) === k);
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

function checkDestination(dest: string, what: string): void {
  if (!posix.isAbsolute(dest)) throw new RuntimeError('INVALID_MOUNT', `${what} destination ${dest} is not an absolute path`);
  if (posix.normalize(dest) === '/') throw new RuntimeError('INVALID_MOUNT', `${what} destination ${dest} cannot be the root directory`);
}

/** Final capability list after privileged/add/drop, validated, in ALL_CAPABILITIES order. */
function resolveCapabilities(opts: SpecOptions): string[] {
  const known = new Set(ALL_CAPABILITIES);
  const norm = (list: string[] | undefined, what: string): string[] =>
    (list ?? []).map((c) => {
      if (c.trim().toUpperCase() === 'ALL') return 'ALL';
      const n = normalizeCap(c);
      if (!known.has(n)) throw new RuntimeError('INVALID_SPEC', `unknown capability ${JSON.stringify(c)} in ${what}`);
      return n;
    });
  const add = norm(opts.capAdd, '--cap-add');
  const drop = norm(opts.capDrop, '--cap-drop');
  let caps: Set<string>;
  if (opts.privileged) caps = new Set(ALL_CAPABILITIES);
  else {
    caps = drop.includes('ALL') ? new Set() : new Set(DEFAULT_CAPABILITIES);
    for (const d of drop) caps.delete(d);
    for (const a of add) {
      if (a === 'ALL') ALL_CAPABILITIES.forEach((c) => caps.add(c));
      else caps.add(a);
    }
    if (add.includes('ALL')) for (const d of drop) caps.delete(d);
  }
  let list = ALL_CAPABILITIES.filter((c) => caps.has(c));
  if (opts.hostCapabilities) {
    const host = new Set(opts.hostCapabilities.map(normalizeCap));
    const missing = list.filter((c) => !host.has(c));
    if (missing.length) {
      opts.onWarning?.(`capabilities not in the host bounding set were dropped: ${missing.join(', ')}`);
      list = list.filter((c) => host.has(c));
    }
  }
  return list;
}

function resolveResources(opts: SpecOptions, privileged: boolean): LinuxResources {
  const r = opts.resources ?? {};
  const out: LinuxResources = { devices: privileged ? [{ allow: true, access: 'rwm' }] : defaultDeviceRules() };
  if (r.memory !== undefined) {
    if (!Number.isInteger(r.memory) || r.memory < MIN_MEMORY) throw new RuntimeError('INVALID_RESOURCE', `memory limit ${r.memory} is below the minimum of 6MB`);
    out.memory = { limit: r.memory };
  }
  if (r.memorySwap !== undefined && r.memorySwap !== 0) {
    if (r.memory === undefined) throw new RuntimeError('INVALID_RESOURCE', 'memory-swap needs a memory limit');
    if (r.memorySwap !== -1 && r.memorySwap < r.memory) throw new RuntimeError('INVALID_RESOURCE', `memory-swap ${r.memorySwap} is below the memory limit ${r.memory}`);
    out.memory!.swap = r.memorySwap;
  } else if (r.memory !== undefined) {
    out.memory!.swap = 2 * r.memory;
  }
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  if (r.cpus !== undefined) {
    const max = opts.hostCpus;
    if (!(r.cpus >= 0.01) || (max !== undefined && r.cpus > max)) {
      throw new RuntimeError('INVALID_RESOURCE', `cpus ${r.cpus} is out of range: from 0.01 to ${max ?? 'the host cpu count'}`);
    }
    cpu.period = CFS_PERIOD;
    cpu.quota = Math.round(r.cpus * CFS_PERIOD);
  }
  if (r.cpuShares !== undefined) {
    if (!Number.isInteger(r.cpuShares) || r.cpuShares < 2 || r.cpuShares > 262144) throw new RuntimeError('INVALID_RESOURCE', `cpu-shares ${r.cpuShares} is out of range 2..262144`);
    cpu.shares = r.cpuShares;
  }
  if (r.cpusetCpus !== undefined) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(r.cpusetCpus)) throw new RuntimeError('INVALID_RESOURCE', `cpuset-cpus ${JSON.stringify(r.cpusetCpus)} is not a cpu list`);
    cpu.cpus = r.cpusetCpus;
  }
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (r.pidsLimit !== undefined && r.pidsLimit > 0) out.pids = { limit: r.pidsLimit };
  if (r.blkioWeight !== undefined) {
    if (!Number.isInteger(r.blkioWeight) || r.blkioWeight < 10 || r.blkioWeight > 1000) throw new RuntimeError('INVALID_RESOURCE', `blkio-weight ${r.blkioWeight} is out of range 10..1000`);
    out.blockIO = { weight: r.blkioWeight };
  }
  return out;
}

/**
 * The runtime-spec config.json for running an image the way `docker run` would: Docker's
 * default mounts, capabilities, masked and read-only paths, device rules and seccomp profile,
 * with the image's Env/Entrypoint/Cmd/WorkingDir/User and the caller's overrides. Pure: all
 * host facts (passwd contents, bounding set, CPU count, kernel release) come in `opts`.
 * Throws RuntimeError (NO_COMMAND, INVALID_USER, INVALID_MOUNT, INVALID_RESOURCE, INVALID_SPEC).
 */
export function specFromImage(config: ImageConfig, opts: SpecOptions): RuntimeSpec {
  const cc = config.config ?? {};
  const privileged = !!opts.privileged;

  // === process.args: Docker's rule: --entrypoint drops the image Cmd as well
  const entrypoint = opts.entrypoint ?? cc.Entrypoint ?? [];
  const cmd = opts.cmd && opts.cmd.length ? opts.cmd : opts.entrypoint ? [] : cc.Cmd ?? [];
  let args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new RuntimeError('NO_COMMAND', 'no command specified: the image has no Entrypoint or Cmd and none was given');

  // === user
  const read = opts.readImageFile ?? (() => undefined);
  const userSpec = opts.user ?? cc.User ?? '';
  const user = resolveUser(userSpec, read('/etc/passwd'), read('/etc/group'));

  // === env: PATH default, HOSTNAME, (TERM), image Env, overrides, HOME
  const hostname = opts.hostname ?? opts.id.slice(0, 12);
  let env = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`];
  if (opts.terminal) env.push('TERM=xterm');
  env = mergeEnv(env, cc.Env ?? []);
  env = mergeEnv(env, opts.env ?? []);
  if (!env.some((e) => envKey(e) === 'HOME')) env.push(`HOME=${user.home}`);

  // === cwd
  const cwd = opts.workdir || cc.WorkingDir || '/';
  if (!posix.isAbsolute(cwd)) throw new RuntimeError('INVALID_SPEC', `working directory ${cwd} is not an absolute path`);

  // === mounts: defaults, then user mounts (later mounts win on the same destination)
  const mounts: Mount[] = defaultMounts();
  if (privileged) {
    for (const m of mounts) if (m.destination === '/sys' || m.destination === '/sys/fs/cgroup') m.options = m.options!.filter((o) => o !== 'ro').concat('rw');
  }
  const user_mounts: Mount[] = [];
  for (const t of opts.tmpfs ?? []) {
    checkDestination(t.destination, 'tmpfs');
    user_mounts.push({ destination: posix.normalize(t.destination), type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', ...(t.options ?? [])] });
  }
  for (const b of opts.binds ?? []) {
    checkDestination(b.destination, 'bind mount');
    if (!posix.isAbsolute(b.source)) throw new RuntimeError('INVALID_MOUNT', `bind mount source ${b.source} is not an absolute path`);
    user_mounts.push({ destination: posix.normalize(b.destination), type: 'bind', source: b.source, options: ['rbind', 'rprivate', b.readonly ? 'ro' : 'rw'] });
  }
  if (opts.initPath) {
    user_mounts.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: opts.initPath, options: ['bind', 'ro'] });
    args = [INIT_PATH_IN_CONTAINER, '--', ...args];
  }
  // The per-container /etc files, unless the user mounts something there (Docker skips its own then).
  const etc = opts.etcFiles ?? {};
  const etcMounts: Mount[] = [];
  for (const [dest, src] of [['/etc/resolv.conf', etc.resolvConf], ['/etc/hostname', etc.hostname], ['/etc/hosts', etc.hosts]] as const) {
    if (src && !user_mounts.some((m) => m.destination === dest)) etcMounts.push({ destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate', opts.readOnlyRootfs ? 'ro' : 'rw'] });
  }
  user_mounts.unshift(...etcMounts);
  const userDests = new Set(user_mounts.map((m) => m.destination));
  const allMounts = [...mounts.filter((m) => !userDests.has(m.destination)), ...user_mounts];

  // === capabilities and seccomp (seccomp rules depend on the final capability set)
  const caps = resolveCapabilities(opts);
  const seccompChoice = privileged ? 'unconfined' : opts.seccomp ?? 'default';
  const seccomp =
    seccompChoice === 'unconfined'
      ? undefined
      : profileToSpec(seccompChoice === 'default' ? DEFAULT_SECCOMP_PROFILE : seccompChoice, { capabilities: caps, ...(opts.kernelRelease ? { kernelRelease: opts.kernelRelease } : {}) });

  const spec: RuntimeSpec = {
    ociVersion: OCI_RUNTIME_SPEC_VERSION,
    process: {
      terminal: !!opts.terminal,
      // The primary gid is a supplementary group too, so that a group with fewer rights than
      // "other" cannot be escaped with setgroups (Docker 20.10.18, CVE-2022-36109).
      user: { uid: user.uid, gid: user.gid, additionalGids: [...new Set([user.gid, ...(user.additionalGids ?? [])])] },
      args,
      env,
      cwd,
      capabilities: { bounding: caps, effective: [...caps], permitted: [...caps] },
      noNewPrivileges: !!opts.noNewPrivileges,
    },
    root: { path: opts.rootfs, readonly: !!opts.readOnlyRootfs },
    hostname,
    mounts: allMounts,
    linux: {
      resources: resolveResources(opts, privileged),
      namespaces: defaultNamespaces(opts.network ?? 'none'),
      ...(opts.cgroupsPath ? { cgroupsPath: opts.cgroupsPath } : {}),
      ...(seccomp ? { seccomp } : {}),
      ...(privileged ? {} : { maskedPaths: [...DEFAULT_MASKED_PATHS], readonlyPaths: [...DEFAULT_READONLY_PATHS] }),
    },
  };
  return spec;
}
