import { accessSync, constants as fsc, promises as fsp, readlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as osc } from 'node:os';
import type { Logger } from '../../src/util/logger.js';
import { nullLogger } from '../../src/util/logger.js';
import type { CgroupManager } from '../cgroups/types.js';
import type { LinuxDeviceCgroup, LinuxResources } from '../spec/types.js';
import { RuntimeError } from '../errors.js';
import { spawnHelper, type HelperProcess, type StdioSlot } from '../helper/spawn.js';
import { hooksFromSpec, runHooks, runHooksWarn } from './hooks.js';
import {
  OCI_VERSION, deriveStatus, isSameProcess, lockContainer, processStartTime, readExit, readState, statePaths, writeState,
  type ContainerState, type ContainerStatus, type StoredState,
} from './state.js';

export type { ContainerState, ContainerStatus } from './state.js';

/**
 * Stdio of the container's first process. With process.terminal in config.json the process
 * gets a pty and the helper relays it to these slots (`terminal` itself is not used).
 */
export interface ContainerIO {
  stdin?: StdioSlot;
  stdout?: StdioSlot;
  stderr?: StdioSlot;
  terminal?: boolean;
}

/** Options of {@link createContainer} and {@link runContainer}. */
export interface CreateOptions {
  /** Container id: [A-Za-z0-9][A-Za-z0-9_.-]*, unique under stateRoot. */
  id: string;
  /** Directory with config.json (and usually the rootfs). */
  bundle: string;
  /** Where container state lives: `<stateRoot>/<id>/`. */
  stateRoot: string;
  io?: ContainerIO;
  /**
   * The container's cgroup. createContainer calls create() and apply(linux.resources + the
   * default device rules), and the
   * child joins every paths() hierarchy before exec; delete() calls remove(). Without it the
   * container runs in the caller's cgroup.
   */
  cgroup?: CgroupManager;
  /** Name of that cgroup, recorded so later processes can rebuild the manager. */
  cgroupName?: string;
  /** Write the container's host pid here (runc --pid-file). */
  pidFile?: string;
  /**
   * runc --console-socket: with process.terminal, the pty master is sent to the unix socket at
   * this path (SCM_RIGHTS) instead of being relayed by the helper; then a terminal container may
   * be created detached.
   */
  consoleSocket?: string;
  /** Run a pid-1 reaper that reaps zombies and forwards signals (docker run --init). */
  init?: boolean;
  /** Keep the helper attached (default); `detach` lets the calling process exit after create. */
  detach?: boolean;
  logger?: Logger;
}

/** Options of {@link loadContainer}. */
export interface LoadOptions {
  /** The container's cgroup manager (for delete and pause/resume). */
  cgroup?: CgroupManager;
  /** Where failures of poststart and poststop hooks are reported (they do not fail the operation). */
  logger?: Logger;
}

/**
 * A container: creating → created → running → stopped (+ paused). Every operation re-reads
 * the persisted state under the container's lock, so several processes may drive one container.
 */
export interface Container {
  readonly id: string;
  /** The runtime-spec state, with the live status (see deriveStatus). */
  state(): Promise<ContainerState>;
  /** Releases a created container: it executes process.args. */
  start(): Promise<void>;
  /** Signals the first process; with `all`, every process of the container's cgroup (needs a CgroupManager). */
  kill(sig: NodeJS.Signals | number, opts?: { all?: boolean }): Promise<void>;
  /** Resolves when the first process ends. */
  wait(): Promise<{ exitCode: number; signal?: string }>;
  /** Stopped containers only, unless `force` (then SIGKILL first). Removes cgroup and state. */
  delete(opts?: { force?: boolean }): Promise<void>;
  /** Freezes / thaws through the cgroup freezer; NOT_SUPPORTED without a CgroupManager. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Streams of 'pipe' stdio slots (only in the creating process). */
  readonly stdio?: { stdin?: Writable; stdout?: Readable; stderr?: Readable };
  /** Capabilities the host's bounding set did not allow (only in the creating process). */
  readonly droppedCapabilities?: readonly string[];
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

interface SpecLike {
  root?: { path?: string };
  hooks?: unknown;
  annotations?: Record<string, string>;
  process?: { args?: unknown; terminal?: boolean };
  linux?: { namespaces?: { type: string; path?: string }[]; uidMappings?: IdMap[]; gidMappings?: IdMap[]; resources?: LinuxResources; devices?: { type?: string; major?: number; minor?: number }[] };
}
interface IdMap { containerID: number; hostID: number; size: number }

async function readSpec(bundle: string): Promise<SpecLike> {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw new RuntimeError('INVALID_SPEC', `reading ${path}`, { cause: e, step: 'config' });
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new RuntimeError('INVALID_SPEC', `parsing ${path}`, { cause: e, step: 'config' });
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new RuntimeError('INVALID_SPEC', `${path} is not a JSON object`, { step: 'config' });
  const s = spec as SpecLike;
  if (!s.process || !Array.isArray(s.process.args) || s.process.args.length === 0) throw new RuntimeError('INVALID_SPEC', `${path}: process.args is empty`, { step: 'config' });
  // runtime-spec: an error for invalid values; a version this runtime does not implement is one
  const v = (spec as { ociVersion?: unknown }).ociVersion;
  if (v !== undefined && (typeof v !== 'string' || !/^1\.\d+\.\d+(-[0-9A-Za-z.+-]+)?(\+[0-9A-Za-z.-]+)?$/.test(v))) {
    throw new RuntimeError('INVALID_SPEC', `${path}: ociVersion ${JSON.stringify(v)} is not a runtime-spec 1.x version`, { step: 'config' });
  }
  return s;
}

/**
 * Device rules every container gets after the spec's own (runc specconv AllowedDevices): mknod
 * of anything, and use of the nodes the helper creates in /dev plus ptmx and the pts.
 */
const DEFAULT_DEVICE_RULES: LinuxDeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' }, { allow: true, type: 'b', access: 'm' },
  ...[[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 2]].map(([major, minor]) => ({ allow: true, type: 'c' as const, major: major!, minor: minor!, access: 'rwm' })),
  { allow: true, type: 'c', major: 136, access: 'rwm' },
];

/** linux.resources plus the default device rules and one rule per linux.devices entry. */
function cgroupResources(spec: SpecLike): LinuxResources {
  const r = spec.linux?.resources ?? {};
  const devs = (spec.linux?.devices ?? []).filter((d) => d.type === 'c' || d.type === 'b').map((d) => ({ allow: true, type: d.type as 'c' | 'b', major: d.major ?? 0, minor: d.minor ?? 0, access: 'rwm' }));
  return { ...r, devices: [...(r.devices ?? []), ...DEFAULT_DEVICE_RULES, ...devs] };
}

function mapText(maps: IdMap[] | undefined): string {
  return (maps ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function cgroupProcs(cg: CgroupManager | undefined): string[] {
  if (!cg) return [];
  return [...new Set(Object.values(cg.paths()))].map((d) => join(d, 'cgroup.procs'));
}

function signalNumber(sig: NodeJS.Signals | number): number {
  if (typeof sig === 'number') return sig;
  const s = (sig.startsWith('SIG') ? sig : `SIG${sig}`) as NodeJS.Signals;
  const n = osc.signals[s];
  if (n === undefined) throw new RuntimeError('INVALID_STATE', `unknown signal ${sig}`);
  return n;
}

class ContainerImpl implements Container {
  readonly stdio?: { stdin?: Writable; stdout?: Readable; stderr?: Readable };
  droppedCapabilities?: readonly string[];

  constructor(
    readonly id: string,
    private readonly stateRoot: string,
    private cgroup: CgroupManager | undefined,
    private readonly helper?: HelperProcess,
    private readonly logger: Logger = nullLogger,
  ) {
    if (helper) {
      const c = helper.child;
      const stdio: { stdin?: Writable; stdout?: Readable; stderr?: Readable } = {};
      if (c.stdin) stdio.stdin = c.stdin;
      if (c.stdout) stdio.stdout = c.stdout;
      if (c.stderr) stdio.stderr = c.stderr;
      this.stdio = stdio;
    }
  }

  async state(): Promise<ContainerState> {
    const s = await readState(this.stateRoot, this.id);
    const status = await deriveStatus(this.stateRoot, s);
    const out: ContainerState = { ociVersion: s.ociVersion, id: s.id, status, bundle: s.bundle };
    // kept once stopped too (crun does; runtime-tools' hooks_stdin compares the poststop pid with it)
    if (s.pid !== undefined) out.pid = s.pid;
    if (s.rootfs) out.rootfs = s.rootfs;
    out.created = s.created;
    out.owner = '';
    if (s.annotations) out.annotations = s.annotations;
    return out;
  }

  private async locked<T>(fn: (s: StoredState, status: ContainerStatus) => Promise<T>): Promise<T> {
    const release = await lockContainer(this.stateRoot, this.id);
    try {
      const s = await readState(this.stateRoot, this.id);
      return await fn(s, await deriveStatus(this.stateRoot, s));
    } finally {
      await release();
    }
  }

  async start(): Promise<void> {
    await this.locked(async (s, status) => {
      if (status !== 'created') throw new RuntimeError('INVALID_STATE', `container ${this.id} is ${status}, not created`);
      const before = s.hooks?.poststart?.length ? exeOf(s.pid) : undefined;
      try {
        await releaseFifo(statePaths(this.stateRoot, this.id).fifo, s);
      } catch (e) {
        // the helper knows why the container died; that is the error worth reporting
        if (this.helper) await this.helper.waitExit().catch(() => {});
        throw this.helper?.error ?? e;
      }
      s.status = 'running';
      await writeState(this.stateRoot, s);
      if (s.hooks?.poststart?.length) {
        // poststart: once the user process is executed (its /proc/PID/exe is no longer the helper)
        for (let i = 0; i < 2500 && exeOf(s.pid) === before && before !== undefined; i++) await sleep(2);
        await runHooksWarn(s.hooks, 'poststart', hookState(s, 'running'), (m) => this.logger.warn(m));
      }
    });
    if (this.helper) await this.helper.waitStarted();
  }

  /** run(): once process.args is executed, the poststart hooks (failures are warnings). */
  async poststart(): Promise<void> {
    const s = await readState(this.stateRoot, this.id);
    if (!s.hooks?.poststart?.length) return;
    if (this.helper) await this.helper.waitStarted();
    await runHooksWarn(s.hooks, 'poststart', hookState(s, 'running'), (m) => this.logger.warn(m));
  }

  async kill(sig: NodeJS.Signals | number, opts: { all?: boolean } = {}): Promise<void> {
    const n = signalNumber(sig);
    const s = await readState(this.stateRoot, this.id);
    const status = await deriveStatus(this.stateRoot, s);
    if (status === 'stopped' || s.pid === undefined) throw new RuntimeError('INVALID_STATE', `container ${this.id} is not running`);
    if (opts.all) {
      if (!this.cgroup) throw new RuntimeError('NOT_SUPPORTED', `container ${this.id} has no cgroup, so kill --all cannot find its processes`);
      await this.cgroup.kill(n);
      if (status === 'paused' && n === osc.signals.SIGKILL) await this.cgroup.freeze('THAWED').catch(() => {});
      return;
    }
    try {
      process.kill(s.pid, n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new RuntimeError('INVALID_STATE', `signalling container ${this.id}`, { cause: e });
    }
    // A frozen container cannot act on the signal; SIGKILL must still take effect.
    if (status === 'paused' && n === osc.signals.SIGKILL && this.cgroup) await this.cgroup.freeze('THAWED').catch(() => {});
  }

  async wait(): Promise<{ exitCode: number; signal?: string }> {
    let result: { exitCode: number; signal?: string } | undefined;
    if (this.helper) {
      result = await this.helper.waitExit();
    } else {
      const s = await readState(this.stateRoot, this.id);
      while (isSameProcess(s.pid, s.pidStartTime) || (s.helperPid && processStartTime(s.helperPid) !== undefined && !(await readExit(this.stateRoot, this.id)))) {
        await sleep(20);
      }
      result = (await readExit(this.stateRoot, this.id)) ?? { exitCode: s.exitCode ?? 255 };
    }
    await this.locked(async (s) => {
      s.status = 'stopped';
      s.exitCode = result.exitCode;
      if (result.signal) s.exitSignal = result.signal;
      await writeState(this.stateRoot, s);
    }).catch(() => {});
    return result;
  }

  async delete(opts: { force?: boolean } = {}): Promise<void> {
    const p = statePaths(this.stateRoot, this.id);
    const s = await readState(this.stateRoot, this.id);
    let status = await deriveStatus(this.stateRoot, s);
    if (status !== 'stopped') {
      if (!opts.force) throw new RuntimeError('INVALID_STATE', `container ${this.id} is ${status}; stop it or use force`);
      if (this.cgroup) {
        await this.cgroup.freeze('THAWED').catch(() => {});
        await this.cgroup.kill(osc.signals.SIGKILL).catch(() => {});
      }
      if (s.pid) try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
      for (let i = 0; i < 500 && isSameProcess(s.pid, s.pidStartTime); i++) await sleep(10);
      status = await deriveStatus(this.stateRoot, s);
      if (status !== 'stopped') throw new RuntimeError('INVALID_STATE', `container ${this.id} did not stop after SIGKILL`);
    }
    // the monitor writes exit.json and exits right after its child; let it finish first
    for (let i = 0; i < 200 && s.helperPid && processStartTime(s.helperPid) !== undefined; i++) await sleep(5);
    if (this.cgroup) await this.cgroup.remove();
    await fsp.rm(p.dir, { recursive: true, force: true });
    await runHooksWarn(s.hooks, 'poststop', hookState(s, 'stopped'), (m) => this.logger.warn(m));
  }

  async pause(): Promise<void> {
    await this.freeze('FROZEN');
  }

  async resume(): Promise<void> {
    await this.freeze('THAWED');
  }

  private async freeze(state: 'FROZEN' | 'THAWED'): Promise<void> {
    const cg = this.cgroup;
    if (!cg) throw new RuntimeError('NOT_SUPPORTED', `container ${this.id} has no cgroup, so it cannot be ${state === 'FROZEN' ? 'paused' : 'resumed'}`);
    await this.locked(async (s, status) => {
      const want: ContainerStatus = state === 'FROZEN' ? 'running' : 'paused';
      if (status !== want) throw new RuntimeError('INVALID_STATE', `container ${this.id} is ${status}, not ${want}`);
      await cg.freeze(state);
      s.status = state === 'FROZEN' ? 'paused' : 'running';
      await writeState(this.stateRoot, s);
    });
  }
}

/** The state JSON a hook gets on stdin: the spec's fields, with the recorded pid even once stopped. */
function hookState(s: StoredState, status: ContainerStatus, pid = s.pid): ContainerState {
  return { ociVersion: s.ociVersion, id: s.id, status, ...(pid !== undefined ? { pid } : {}), bundle: s.bundle, ...(s.annotations ? { annotations: s.annotations } : {}) };
}

/** readlink /proc/PID/exe, or undefined. */
function exeOf(pid: number | undefined): string | undefined {
  if (!pid) return undefined;
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/** Opens the exec fifo for reading, which releases the child blocked on its write end. */
async function releaseFifo(fifo: string, s: StoredState): Promise<void> {
  const fh = await fsp.open(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK).catch((e: unknown) => {
    throw new RuntimeError('INVALID_STATE', `opening the exec fifo of container ${s.id}`, { cause: e });
  });
  try {
    const buf = Buffer.alloc(1);
    const readOne = async (): Promise<boolean> => {
      try {
        return (await fh.read(buf, 0, 1, null)).bytesRead === 1;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        return false;
      }
    };
    for (let i = 0; ; i++) {
      if (await readOne()) break;
      // the child may have written, exec'd and even exited since that read: look once more
      if (!isSameProcess(s.pid, s.pidStartTime)) {
        if (await readOne()) break;
        throw new RuntimeError('INVALID_STATE', `container ${s.id} exited before start`);
      }
      if (i > 10_000) throw new RuntimeError('INVALID_STATE', `container ${s.id} did not take the start signal`);
      await sleep(i < 50 ? 0 : 2);
    }
  } finally {
    await fh.close();
  }
  await fsp.rm(fifo, { force: true });
}

async function createInternal(opts: CreateOptions, waitStart: boolean): Promise<ContainerImpl> {
  const log = opts.logger ?? nullLogger;
  if (!ID_RE.test(opts.id)) throw new RuntimeError('INVALID_ID', `invalid container id ${JSON.stringify(opts.id)}`);
  if (opts.io?.terminal) throw new RuntimeError('NOT_SUPPORTED', 'io.terminal is not supported; set process.terminal in config.json');
  const bundle = resolve(opts.bundle);
  const spec = await readSpec(bundle);
  const hooks = hooksFromSpec(spec.hooks);
  // the monitor relays the pty to its own stdio, which a detached create leaves behind
  if (spec.process?.terminal && opts.detach && !opts.consoleSocket) throw new RuntimeError('NOT_SUPPORTED', 'process.terminal needs a console socket or an attached container (use run)', { step: 'terminal' });
  if (opts.consoleSocket && !spec.process?.terminal) throw new RuntimeError('INVALID_SPEC', 'a console socket needs process.terminal in config.json', { step: 'terminal' });
  const p = statePaths(opts.stateRoot, opts.id);
  await fsp.mkdir(opts.stateRoot, { recursive: true, mode: 0o711 });
  try {
    await fsp.mkdir(p.dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RuntimeError('CONTAINER_EXISTS', `container ${opts.id} already exists`, { cause: e });
    throw new RuntimeError('INVALID_STATE', `creating the state directory of ${opts.id}`, { cause: e });
  }
  const rootPath = spec.root?.path;
  const s: StoredState = {
    ociVersion: OCI_VERSION, id: opts.id, bundle, created: new Date().toISOString(), status: 'creating',
    ...(rootPath ? { rootfs: isAbsolute(rootPath) ? rootPath : join(bundle, rootPath) } : {}),
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
    ...(opts.cgroupName ? { cgroupName: opts.cgroupName } : {}),
    ...(opts.init ? { init: true } : {}),
    ...(Object.keys(hooks).length ? { hooks } : {}),
  };
  let helper: HelperProcess | undefined;
  try {
    await writeState(opts.stateRoot, s);
    if (opts.cgroup) {
      await opts.cgroup.create();
      await opts.cgroup.apply(cgroupResources(spec));
    }
    const linux = spec.linux;
    helper = spawnHelper({
      config: {
        bundle, configPath: 'config.json', cgroupProcs: cgroupProcs(opts.cgroup), waitStart, init: opts.init ?? false, exitFile: p.exit,
        ...(waitStart ? { execFifo: p.fifo } : {}),
        ...(opts.consoleSocket ? { consoleSocket: resolve(opts.consoleSocket) } : {}),
      },
      ...(opts.io?.stdin !== undefined ? { stdin: opts.io.stdin } : {}),
      ...(opts.io?.stdout !== undefined ? { stdout: opts.io.stdout } : {}),
      ...(opts.io?.stderr !== undefined ? { stderr: opts.io.stderr } : {}),
      detached: opts.detach ?? false,
      onHooksRequest: async (pid) => {
        // prestart (legacy; runc and crun run it here, with status created) and createRuntime,
        // in the runtime's namespaces, before the child's pivot_root
        await runHooks(hooks, 'prestart', hookState(s, 'created', pid));
        await runHooks(hooks, 'createRuntime', hookState(s, 'creating', pid));
        return { state: JSON.stringify(hookState(s, 'creating', pid)), startState: JSON.stringify(hookState(s, 'created', pid)) };
      },
      onMappingRequest: async (pid) => {
        await fsp.writeFile(`/proc/${pid}/uid_map`, mapText(linux?.uidMappings));
        await fsp.writeFile(`/proc/${pid}/gid_map`, mapText(linux?.gidMappings));
      },
    });
    s.helperPid = helper.child.pid;
    const pid = await helper.waitForPid();
    s.pid = pid;
    const st = processStartTime(pid);
    if (st) s.pidStartTime = st;
    await writeState(opts.stateRoot, s);
    const ready = await helper.waitReady();
    if (ready.droppedCapabilities.length) log.warn(`capabilities not in the host's bounding set were dropped: ${ready.droppedCapabilities.join(', ')}`);
    s.status = waitStart ? 'created' : 'running';
    await writeState(opts.stateRoot, s);
    if (opts.pidFile) await fsp.writeFile(opts.pidFile, `${pid}`);
    const c = new ContainerImpl(opts.id, opts.stateRoot, opts.cgroup, helper, log);
    c.droppedCapabilities = ready.droppedCapabilities;
    return c;
  } catch (e) {
    // Nothing of a failed create survives: its mounts lived in its own mount namespace, which
    // dies with the child; the cgroup and the state directory are removed here.
    helper?.kill('SIGKILL');
    if (s.pid) try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
    if (helper) await helper.waitExit().catch(() => {});
    for (let i = 0; i < 200 && helper && helper.child.exitCode === null && helper.child.signalCode === null; i++) await sleep(5);
    const cleanup: unknown[] = [];
    if (opts.cgroup) await opts.cgroup.remove().catch((ce: unknown) => cleanup.push(ce));
    await fsp.rm(p.dir, { recursive: true, force: true }).catch((ce: unknown) => cleanup.push(ce));
    // a create that got as far as a process continues the lifecycle at its end: poststop hooks
    if (s.pid) await runHooksWarn(hooks, 'poststop', hookState(s, 'stopped'), (m) => log.warn(m));
    const err = e instanceof RuntimeError ? e : new RuntimeError('HELPER_FAILED', `creating container ${opts.id}`, { cause: e });
    if (cleanup.length) err.cleanupError = cleanup[0];
    throw err;
  }
}

/**
 * Creates a container and leaves it `created`: its first process is set up (namespaces,
 * mounts, pivot_root, limits) and blocked on `<state>/exec.fifo` until start(). With
 * `detach`, the caller may exit; its helper keeps monitoring and records the exit status.
 */
export async function createContainer(opts: CreateOptions): Promise<Container> {
  const c = await createInternal(opts, true);
  if (opts.detach) (c as unknown as { helper?: HelperProcess }).helper?.detach();
  return c;
}

/** A container created earlier, possibly by another process. CONTAINER_NOT_FOUND if absent. */
export async function loadContainer(stateRoot: string, id: string, opts: LoadOptions = {}): Promise<Container> {
  if (!ID_RE.test(id)) throw new RuntimeError('INVALID_ID', `invalid container id ${JSON.stringify(id)}`);
  await readState(stateRoot, id);
  return new ContainerImpl(id, stateRoot, opts.cgroup, undefined, opts.logger);
}

/** The stored state of a container, for callers that need its cgroup name or pid. */
export async function loadStoredState(stateRoot: string, id: string): Promise<StoredState> {
  return readState(stateRoot, id);
}

/** States of every container under stateRoot, sorted by id. */
export async function listContainers(stateRoot: string): Promise<ContainerState[]> {
  let names: string[];
  try {
    names = await fsp.readdir(stateRoot);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RuntimeError('INVALID_STATE', `listing ${stateRoot}`, { cause: e });
  }
  const out: ContainerState[] = [];
  for (const n of names.sort()) {
    if (!ID_RE.test(n)) continue;
    try {
      out.push(await new ContainerImpl(n, stateRoot, undefined).state());
    } catch {
      /* half-deleted entry */
    }
  }
  return out;
}

/**
 * create + start + wait + delete, without the exec fifo round trip. An abort kills the
 * container (SIGKILL); with `forwardSignals` this process's SIGINT/SIGTERM/SIGHUP are sent to
 * the container (docker --sig-proxy). The state and the cgroup are removed in every case.
 */
export async function runContainer(opts: CreateOptions & { signal?: AbortSignal; forwardSignals?: boolean }): Promise<{ exitCode: number; signal?: string }> {
  if (opts.signal?.aborted) throw new RuntimeError('INVALID_STATE', `running container ${opts.id} was aborted`, { cause: opts.signal.reason });
  // docker's --sig-proxy: SIGINT/SIGTERM/SIGHUP of this process go to the container instead;
  // the handlers go in before create so a signal during setup is not lost (nor fatal to us)
  const forwarded: NodeJS.Signals[] = opts.forwardSignals ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : [];
  const pending: NodeJS.Signals[] = [];
  let c: ContainerImpl | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (c) void c.kill(sig).catch(() => {});
    else pending.push(sig);
  };
  for (const sig of forwarded) process.on(sig, onSignal);
  const onAbort = (): void => void c?.kill('SIGKILL').catch(() => {});
  try {
    c = await createInternal({ ...opts, detach: false }, false);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    for (const sig of pending) onSignal(sig);
    try {
      await c.poststart();
      return await c.wait();
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await c.delete({ force: true });
    }
  } finally {
    for (const sig of forwarded) process.off(sig, onSignal);
  }
}

/** What {@link execInContainer} runs; unset fields come from the container's config.json. */
export interface ExecProcess {
  args: string[];
  env?: string[];
  cwd?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  /** A pty for the process, relayed by the helper to the io slots (docker exec -t). */
  terminal?: boolean;
}

/** Host paths of the cgroup.procs files of the cgroups `pid` is in (v1 hierarchies and v2). */
async function cgroupProcsOf(pid: number, fsRoot = '/sys/fs/cgroup'): Promise<string[]> {
  const text = await fsp.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, , ctrls, path] = m as unknown as [string, string, string, string];
    const dir = ctrls === '' ? (existsSyncSafe(join(fsRoot, 'cgroup.controllers')) ? fsRoot : join(fsRoot, 'unified')) : join(fsRoot, ctrls.split(',')[0]!.replace(/^name=/, ''));
    const procs = join(dir, path, 'cgroup.procs');
    if (existsSyncSafe(procs)) out.push(procs);
  }
  return out;
}

function existsSyncSafe(p: string): boolean {
  try {
    accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs another process in a running container (runc exec): the helper joins the container's
 * namespaces and cgroups, applies its capabilities, rlimits and seccomp profile, and execs.
 * Resolves with the process's exit; rejects with the helper's RuntimeError (step, errno).
 * `signal` aborts it: the process is killed with SIGKILL.
 */
export async function execInContainer(stateRoot: string, id: string, proc: ExecProcess, opts: { io?: ContainerIO; init?: boolean; signal?: AbortSignal } = {}): Promise<{ exitCode: number; signal?: string }> {
  const s = await readState(stateRoot, id);
  const status = await deriveStatus(stateRoot, s);
  if (status !== 'running' || !s.pid) throw new RuntimeError('INVALID_STATE', `container ${id} is ${status}, not running`);
  const text = await fsp.readFile(join(s.bundle, 'config.json'), 'utf8').catch((e: unknown) => {
    throw new RuntimeError('INVALID_SPEC', `reading the config of container ${id}`, { cause: e, step: 'config' });
  });
  const spec = JSON.parse(text) as { process?: Record<string, unknown>; linux?: Record<string, unknown> & { namespaces?: { type: string }[] } };
  const nsFile: Record<string, string> = { pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup' };
  const namespaces = (spec.linux?.namespaces ?? []).map((n) => ({ type: n.type, path: `/proc/${s.pid}/ns/${nsFile[n.type] ?? n.type}` }));
  const config = {
    ...spec,
    process: { ...spec.process, args: proc.args, ...(proc.env ? { env: proc.env } : {}), ...(proc.cwd ? { cwd: proc.cwd } : {}), ...(proc.user ? { user: proc.user } : {}), terminal: !!proc.terminal },
    linux: { ...spec.linux, namespaces },
  };
  const helper = spawnHelper({
    config: { bundle: s.bundle, config, exec: true, init: opts.init ?? false, cgroupProcs: await cgroupProcsOf(s.pid) },
    ...(opts.io?.stdin !== undefined ? { stdin: opts.io.stdin } : {}),
    ...(opts.io?.stdout !== undefined ? { stdout: opts.io.stdout } : {}),
    ...(opts.io?.stderr !== undefined ? { stderr: opts.io.stderr } : {}),
  });
  // an abort SIGKILLs the exec'd process (a healthcheck past its timeout); its exit still resolves
  const onAbort = (): void => void helper.waitForPid().then((pid) => process.kill(pid, 'SIGKILL'), () => undefined).catch(() => undefined);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  try {
    return await helper.waitExit();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
