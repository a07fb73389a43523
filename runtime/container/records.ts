/**
 * Docker-level container records under `<root>/containers/<id>/`: container.json (what was
 * asked for), status.json (what happened), `<id>-json.log` (output in docker's json-file
 * format). The OCI runtime state lives apart under `<root>/run/<id>/` (state.ts).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as osc } from 'node:os';
import { cgroupManagerFromPaths } from '../cgroups/manager.js';
import type { CgroupManager } from '../cgroups/types.js';
import { RuntimeError } from '../errors.js';
import type { Healthcheck, HealthState } from '../health/health.js';
import type { LogRotation } from '../monitor/json-log.js';
import type { RestartPolicy } from '../monitor/restart.js';
import { detachNetwork, type PortMapping } from '../network/cni.js';
import { loadContainer } from './container.js';
import { isSameProcess, lockContainer, processStartTime, readExit, readState } from './state.js';

/** What a container was created with (never changes after create). */
export interface ContainerRecord {
  id: string;
  name: string;
  /** The image as the user named it. */
  image: string;
  /** The image's config digest. */
  imageId?: string;
  /** Entrypoint + cmd as run. */
  command: string[];
  env: string[];
  created: string;
  /** --rm: remove everything when the container ends. */
  autoRemove: boolean;
  tty: boolean;
  detached: boolean;
  /** --init: the helper's init is PID 1. */
  init: boolean;
  /** The image's STOPSIGNAL (default SIGTERM). */
  stopSignal: string;
  cgroupName: string;
  cgroup?: { version: 1 | 2; paths: Record<string, string> };
  hostname: string;
  network: string;
  /** Published ports (CNI portmap). */
  ports?: PortMapping[];
  /** The container's IPv4 address on its CNI network. */
  address?: string;
  /** Size cap of the json-file log (--log-opt max-size, max-file). */
  logRotation?: LogRotation;
  /** The healthcheck the monitor runs (image HEALTHCHECK + --health-* flags). */
  healthcheck?: Healthcheck;
  /** --restart, applied by the monitor. */
  restartPolicy?: RestartPolicy;
  /** -i of a detached container: the monitor keeps its stdin open for attach. */
  openStdin?: boolean;
  /** -v, --mount, --tmpfs and the image's VOLUMEs; a volume listed here is in use. */
  mounts?: MountRecord[];
  /** --network-alias (user networks): names `start` attaches the network with again. */
  networkAliases?: string[];
  /** --domainname, for the /etc/hosts `start` writes again. */
  domainname?: string;
  /** --add-host entries as resolved (host-gateway replaced), for the /etc/hosts `start` writes again. */
  extraHosts?: { name: string; ip: string }[];
}

/** A mount a container was created with (docker inspect's Mounts). */
export interface MountRecord {
  type: 'bind' | 'volume' | 'tmpfs';
  /** The volume's name (type volume). */
  name?: string;
  /** Host path: the bind source or the volume's _data directory; '' for tmpfs. */
  source: string;
  destination: string;
  readonly: boolean;
  /** Bind propagation (rprivate, shared, slave, …). */
  propagation?: string;
  /** A volume made for this container (-v /dir, the image's VOLUME): removed with it by rm -v and --rm. */
  anonymous?: boolean;
}

/** Lifecycle of a container record (docker's State.Status); `restarting` while the monitor waits out its backoff. */
export type RecordStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited';

/** status.json: written by the owner (the monitor of a detached container, else the run command). */
export interface StatusRecord {
  status: RecordStatus;
  /** The process that drives the container while it lives; when it dies, the container is over. */
  ownerPid?: number;
  ownerStartTime?: string;
  pid?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: string;
  error?: string;
  /** Healthcheck state of the current run (docker's State.Health). */
  health?: HealthState;
  /** Restarts done by the restart policy (docker's RestartCount). */
  restartCount?: number;
}

/** A container as listed: its record and its live status. */
export interface ContainerInfo {
  record: ContainerRecord;
  status: StatusRecord;
}

const ID_HEX = /^[0-9a-f]{64}$/;

/** Paths of one container's record directory. */
export function recordPaths(root: string, id: string): { dir: string; record: string; status: string; log: string; rootfs: string; names: string; runState: string } {
  const dir = join(root, 'containers', id);
  return {
    dir, record: join(dir, 'container.json'), status: join(dir, 'status.json'), log: join(dir, `${id}-json.log`),
    rootfs: join(dir, 'rootfs'), names: join(root, 'containers', 'names'), runState: join(root, 'run'),
  };
}

async function writeJson(path: string, v: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify(v)}\n`);
  await fsp.rename(tmp, path);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fsp.readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Writes container.json. */
export async function writeRecord(root: string, rec: ContainerRecord): Promise<void> {
  await writeJson(recordPaths(root, rec.id).record, rec);
}

/** Writes status.json. */
export async function writeStatus(root: string, id: string, st: StatusRecord): Promise<void> {
  await writeJson(recordPaths(root, id).status, st);
}

/** Reads container.json; undefined for a directory of a run that predates records or is half-made. */
export async function readRecord(root: string, id: string): Promise<ContainerRecord | undefined> {
  return readJson<ContainerRecord>(recordPaths(root, id).record);
}

/** Reads status.json as last written (see {@link containerInfo} for the live one). */
export async function readStatus(root: string, id: string): Promise<StatusRecord | undefined> {
  return readJson<StatusRecord>(recordPaths(root, id).status);
}

/** Status record naming this process as the container's owner. */
export function ownedStatus(status: RecordStatus, extra: Partial<StatusRecord> = {}): StatusRecord {
  const st = processStartTime(process.pid);
  return { status, ownerPid: process.pid, ...(st ? { ownerStartTime: st } : {}), ...extra };
}

/** Locks a container's record directory (see lockContainer). */
export function lockRecord(root: string, id: string): Promise<() => Promise<void>> {
  return lockContainer(join(root, 'containers'), id, 30_000);
}

function cgroupOf(rec: ContainerRecord): CgroupManager | undefined {
  return rec.cgroup ? cgroupManagerFromPaths(rec.cgroupName, rec.cgroup.version, rec.cgroup.paths) : undefined;
}

/**
 * Releases what a container holds on the host once it no longer runs: kills what is left in
 * its cgroup, deletes the runtime state (and the cgroup), unmounts the rootfs. Keeps the
 * record, the log and the upper dir. Idempotent.
 */
export async function releaseResources(root: string, rec: ContainerRecord): Promise<void> {
  const p = recordPaths(root, rec.id);
  const cg = cgroupOf(rec);
  const processes = async () => {
    if (cg) {
      await cg.freeze('THAWED').catch(() => undefined);
      await cg.kill(osc.signals.SIGKILL).catch(() => undefined);
      for (let i = 0; i < 400; i++) {
        const pids = await cg.pids().catch(() => [] as number[]);
        if (!pids.length) break;
        await sleep(5);
      }
    }
    const c = await loadContainer(p.runState, rec.id, cg ? { cgroup: cg } : {}).catch(() => undefined);
    if (c) await c.delete({ force: true }).catch(() => undefined);
    if (cg) await cg.remove().catch(() => undefined);
  };
  // the network's CNI DEL (slow: plugin binaries) runs meanwhile; a dying process needs no veth
  const [, net] = await Promise.allSettled([processes(), detachNetwork(root, rec.id)]);
  if (net.status === 'rejected') throw net.reason;
  // loaded late: the mount bindings (koffi) would add to every idle monitor's memory
  const { unmount } = await import('../rootfs/prepare.js');
  unmount(p.rootfs);
}

/**
 * Removes a container entirely: resources, record directory and its name; its anonymous
 * volumes too with `volumes` or when it was run with --rm. The caller has checked that it may
 * (stopped, or force).
 */
export async function removeRecord(root: string, rec: ContainerRecord, opts: { volumes?: boolean } = {}): Promise<void> {
  const p = recordPaths(root, rec.id);
  await releaseResources(root, rec);
  await fsp.rm(p.dir, { recursive: true, force: true });
  const nameFile = join(p.names, rec.name);
  if ((await fsp.readFile(nameFile, 'utf8').catch(() => '')).trim() === rec.id) await fsp.rm(nameFile, { force: true });
  // docker: --rm and rm -v take the container's anonymous volumes along
  const anonymous = (rec.mounts ?? []).filter((m) => m.anonymous && m.name).map((m) => m.name!);
  if (anonymous.length && (opts.volumes || rec.autoRemove)) {
    const { removeAnonymousVolumes } = await import('../volumes/store.js');
    await removeAnonymousVolumes(root, anonymous);
  }
}

/** True while the owner of a not-yet-exited container still runs. */
export function ownerAlive(st: StatusRecord): boolean {
  return isSameProcess(st.ownerPid, st.ownerStartTime);
}

/**
 * The live status of a container. A container whose owner (monitor or run command) died
 * without recording an exit is over: what is left of it is killed and released, and it is
 * recorded as exited (137, or what the helper wrote) — never a phantom "running". With
 * --rm it is then removed and undefined is returned.
 */
export async function containerInfo(root: string, id: string): Promise<ContainerInfo | undefined> {
  const rec = await readRecord(root, id);
  let st = await readStatus(root, id);
  if (!rec || !st) return undefined;
  if (st.status === 'exited') return { record: rec, status: st };
  if (ownerAlive(st)) {
    // pause/unpause change the runtime state only
    const rs = await readState(join(root, 'run'), id).catch(() => undefined);
    if (st.status === 'running' && rs?.status === 'paused') st = { ...st, status: 'paused' };
    return { record: rec, status: st };
  }
  const release = await lockRecord(root, id).catch(() => undefined);
  if (!release) return undefined;
  try {
    st = await readStatus(root, id);
    if (!st) return undefined;
    if (st.status === 'exited' || ownerAlive(st)) return { record: rec, status: st };
    await releaseResources(root, rec);
    const exit = await readExit(join(root, 'run'), id);
    const next: StatusRecord = {
      status: 'exited', ...(st.pid ? { pid: st.pid } : {}), ...(st.startedAt ? { startedAt: st.startedAt } : {}),
      finishedAt: new Date().toISOString(), exitCode: exit ? exitCodeOf(exit) : 137,
      ...(exit?.signal ? { signal: exit.signal } : !exit ? { signal: 'SIGKILL' } : {}),
      error: 'the container monitor ended unexpectedly',
      ...(st.restartCount ? { restartCount: st.restartCount } : {}),
    };
    if (rec.autoRemove) {
      await removeRecord(root, rec);
      return undefined;
    }
    await writeStatus(root, id, next);
    return { record: rec, status: next };
  } finally {
    await release().catch(() => undefined);
  }
}

/** Docker's exit status: 128+N for a death by signal N. */
export function exitCodeOf(r: { exitCode: number; signal?: string }): number {
  if (r.signal) {
    const n = (osc.signals as Record<string, number>)[r.signal];
    if (n) return 128 + n;
  }
  return r.exitCode;
}

/** Ids of every container record, oldest first. */
export async function listIds(root: string): Promise<string[]> {
  const dir = join(root, 'containers');
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const out: { id: string; created: string }[] = [];
  for (const n of names) {
    if (!ID_HEX.test(n)) continue;
    const rec = await readRecord(root, n);
    if (rec) out.push({ id: n, created: rec.created });
  }
  return out.sort((a, b) => a.created.localeCompare(b.created)).map((x) => x.id);
}

/** Every container with its live status, newest first. */
export async function listInfos(root: string): Promise<ContainerInfo[]> {
  const out: ContainerInfo[] = [];
  for (const id of (await listIds(root)).reverse()) {
    const i = await containerInfo(root, id);
    if (i) out.push(i);
  }
  return out;
}

/**
 * Resolves a container reference like docker: exact name, full id, or a unique id prefix.
 * CONTAINER_NOT_FOUND when nothing matches, INVALID_ID when a prefix is ambiguous.
 */
export async function resolveContainer(root: string, ref: string): Promise<string> {
  const name = ref.startsWith('/') ? ref.slice(1) : ref;
  if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    const byName = (await fsp.readFile(join(root, 'containers', 'names', name), 'utf8').catch(() => '')).trim();
    if (byName && (await readRecord(root, byName))) return byName;
  }
  if (/^[0-9a-f]+$/.test(ref)) {
    const ids = await listIds(root);
    const hits = ids.filter((i) => i.startsWith(ref));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw new RuntimeError('INVALID_ID', `container id prefix ${ref} is ambiguous: it matches ${hits.length} containers`);
  }
  throw new RuntimeError('CONTAINER_NOT_FOUND', `no such container: ${ref}`);
}

/** Waits until a container has exited (or is gone); returns its final info, undefined if removed. */
export async function waitExited(root: string, id: string, timeoutMs = Infinity): Promise<ContainerInfo | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 20)) {
    const i = await containerInfo(root, id);
    if (!i || i.status.status === 'exited') return i;
    if (Date.now() > deadline) return i;
    await sleep(delay);
  }
}

const ADJECTIVES = ['brave', 'calm', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty', 'proud', 'quiet', 'rapid', 'sharp', 'tender', 'upbeat', 'vivid', 'witty', 'zesty'];
const NOUNS = ['ant', 'bee', 'crane', 'dove', 'eagle', 'falcon', 'gecko', 'heron', 'ibis', 'jay', 'koala', 'lynx', 'moth', 'newt', 'otter', 'panda', 'quail', 'raven', 'swan', 'tiger'];

/** A docker-style generated name (adjective_noun, with a number after many collisions). */
export function generateName(attempt: number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)]!;
  const base = `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
  return attempt < 5 ? base : `${base}${Math.floor(Math.random() * 1000)}`;
}
