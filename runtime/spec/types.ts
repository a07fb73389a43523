/**
 * OCI runtime-spec `config.json` types, Linux subset. Field names are the spec's, verbatim.
 * https://github.com/opencontainers/runtime-spec/blob/main/config.md
 * https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md
 */

/** The bundle's config.json. */
export interface RuntimeSpec {
  ociVersion: string;
  process?: Process;
  root?: Root;
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Hooks;
  annotations?: Record<string, string>;
  linux?: Linux;
}

/** `root`: the container's root filesystem, relative to the bundle or absolute. */
export interface Root {
  path: string;
  readonly?: boolean;
}

/** `process`: what the runtime execs as the container's first process. */
export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: User;
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd: string;
  capabilities?: LinuxCapabilities;
  rlimits?: PosixRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

/** `process.user`: numeric ids only; names are resolved before the spec is written. */
export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

/** `process.capabilities`: capability names like `CAP_CHOWN` per set. */
export interface LinuxCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

/** One `process.rlimits` entry, e.g. `{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }`. */
export interface PosixRlimit {
  type: string;
  hard: number;
  soft: number;
}

/** One `mounts` entry. */
export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  uidMappings?: LinuxIdMapping[];
  gidMappings?: LinuxIdMapping[];
}

/** `hooks`: run by runtime/container/hooks.ts and, inside the container, by the helper. */
export interface Hooks {
  prestart?: Hook[];
  createRuntime?: Hook[];
  createContainer?: Hook[];
  startContainer?: Hook[];
  poststart?: Hook[];
  poststop?: Hook[];
}

/** One hook. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds; the hook is killed (SIGKILL) and counts as failed after it. */
  timeout?: number;
}

/** `linux`: the Linux-specific part of the spec. */
export interface Linux {
  uidMappings?: LinuxIdMapping[];
  gidMappings?: LinuxIdMapping[];
  sysctl?: Record<string, string>;
  resources?: LinuxResources;
  cgroupsPath?: string;
  namespaces?: LinuxNamespace[];
  devices?: LinuxDevice[];
  seccomp?: LinuxSeccomp;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  personality?: { domain: string; flags?: string[] };
}

/** A uid/gid mapping for user namespaces. */
export interface LinuxIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** Namespace kinds of the runtime-spec. */
export type LinuxNamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';

/** One `linux.namespaces` entry; `path` joins an existing namespace instead of creating one. */
export interface LinuxNamespace {
  type: LinuxNamespaceType;
  path?: string;
}

/** One `linux.devices` entry: a device node created in the container's /dev. */
export interface LinuxDevice {
  type: 'c' | 'b' | 'u' | 'p';
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** `linux.resources`: what the cgroup manager applies. */
export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCpu;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: { pageSize: string; limit: number }[];
  network?: { classID?: number; priorities?: { name: string; priority: number }[] };
  unified?: Record<string, string>;
}

/** A device cgroup rule (`a *:* rwm` style). */
export interface LinuxDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

/** `linux.resources.memory`; -1 means unlimited. */
export interface LinuxMemory {
  limit?: number;
  reservation?: number;
  /** Memory plus swap (v1 memsw semantics, as in the spec). */
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
}

/** `linux.resources.cpu`. */
export interface LinuxCpu {
  shares?: number;
  quota?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  idle?: number;
}

/** `linux.resources.pids`; limit <= 0 means unlimited. */
export interface LinuxPids {
  limit: number;
}

/** `linux.resources.blockIO`. */
export interface LinuxBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: { major: number; minor: number; weight?: number; leafWeight?: number }[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

/** A per-device throttle rate. */
export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

/** Seccomp actions of the runtime-spec (libseccomp names). */
export type LinuxSeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

/** Seccomp argument comparison operators. */
export type LinuxSeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** `linux.seccomp`: the filter the helper loads (with libseccomp) last, right before exec. */
export interface LinuxSeccomp {
  defaultAction: LinuxSeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: LinuxSyscall[];
}

/** One rule: these syscall names get `action` when all `args` conditions hold. */
export interface LinuxSyscall {
  names: string[];
  action: LinuxSeccompAction;
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

/** One argument condition. */
export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: LinuxSeccompOperator;
}

/** Runtime-spec state JSON (`state` command output). */
export interface RuntimeState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

/** The runtime-spec version tsbuild writes. */
export const OCI_RUNTIME_SPEC_VERSION = '1.1.0';
