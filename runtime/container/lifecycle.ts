/**
 * Docker-style operations on recorded containers (stop, kill, rm, pause, exec): they work
 * from any process, through the records (records.ts) and the runtime state (container.ts).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroupManagerFromPaths } from '../cgroups/manager.js';
import { RuntimeError } from '../errors.js';
import { readFileInRoot } from '../rootfs/read-in-root.js';
import { resolveUser } from '../spec/user.js';
import { markStopRequested } from '../monitor/control.js';
import { execInContainer, loadContainer, type Container, type ContainerIO } from './container.js';
import { containerInfo, lockRecord, ownerAlive, recordPaths, removeRecord, waitExited, type ContainerInfo, type ContainerRecord } from './records.js';

async function infoOf(root: string, id: string): Promise<ContainerInfo> {
  const i = await containerInfo(root, id);
  if (!i) throw new RuntimeError('CONTAINER_NOT_FOUND', `no such container: ${id}`);
  return i;
}

async function runtimeContainer(root: string, rec: ContainerRecord): Promise<Container> {
  const cgroup = rec.cgroup ? cgroupManagerFromPaths(rec.cgroupName, rec.cgroup.version, rec.cgroup.paths) : undefined;
  return loadContainer(join(root, 'run'), rec.id, cgroup ? { cgroup } : {});
}

function isLive(i: ContainerInfo): boolean {
  return i.status.status === 'running' || i.status.status === 'paused';
}

/** Sends a signal to the container's first process (docker kill). INVALID_STATE unless it runs. */
export async function killContainer(root: string, id: string, signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
  const i = await infoOf(root, id);
  if (!isLive(i)) throw new RuntimeError('INVALID_STATE', `container ${i.record.name} is not running`);
  await (await runtimeContainer(root, i.record)).kill(signal);
}

/**
 * docker stop: the image's STOPSIGNAL (or `signal`), SIGKILL after `timeoutSec`, then waits
 * until the exit is recorded; the restart policy does not apply to that exit. A container that
 * does not run is left alone.
 */
export async function stopContainer(root: string, id: string, opts: { timeoutSec?: number; signal?: string } = {}): Promise<void> {
  const i = await infoOf(root, id);
  // the monitor must not apply the restart policy to this exit
  if (i.status.status !== 'exited') await markStopRequested(recordPaths(root, id).dir);
  if (i.status.status === 'restarting') {
    await waitExited(root, id, 30_000);
    return;
  }
  if (!isLive(i)) return;
  const c = await runtimeContainer(root, i.record);
  const timeout = (opts.timeoutSec ?? 10) * 1000;
  if (timeout > 0) {
    // a paused container cannot act on its stop signal: it gets SIGKILL, as with docker
    if (i.status.status === 'running') await c.kill((opts.signal ?? i.record.stopSignal) as NodeJS.Signals).catch(() => undefined);
    const after = await waitExited(root, id, timeout);
    if (!after || after.status.status === 'exited') return;
  }
  await c.kill('SIGKILL').catch(() => undefined);
  await waitExited(root, id, 30_000);
}

/** docker rm: a stopped container, or with `force` a running one (SIGKILL first); `volumes` (rm -v) removes its anonymous volumes too. */
export async function removeContainer(root: string, id: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
  let i = await infoOf(root, id);
  if (i.status.status !== 'exited') {
    if (!opts.force) throw new RuntimeError('INVALID_STATE', `container ${i.record.name} is ${i.status.status}: stop it before removing it, or force the removal (-f)`);
    await markStopRequested(recordPaths(root, id).dir);
    const c = await runtimeContainer(root, i.record);
    await c.kill('SIGKILL').catch(() => undefined);
    const owner = i.status;
    const after = await waitExited(root, id, 10_000);
    // the monitor exits right after recording the exit: let it go first, so nothing of it outlives rm
    for (let k = 0; k < 400 && ownerAlive(owner); k++) await sleep(5);
    if (!after) return; // --rm: its monitor removed it
    i = after;
  }
  const release = await lockRecord(root, id);
  try {
    await removeRecord(root, i.record, { volumes: !!opts.volumes });
  } finally {
    await release().catch(() => undefined);
  }
}

/** docker pause / unpause, through the cgroup freezer. */
export async function pauseContainer(root: string, id: string, pause: boolean): Promise<void> {
  const i = await infoOf(root, id);
  const want = pause ? 'running' : 'paused';
  if (i.status.status !== want) throw new RuntimeError('INVALID_STATE', `container ${i.record.name} is ${i.status.status}, not ${want}`);
  const c = await runtimeContainer(root, i.record);
  await (pause ? c.pause() : c.resume());
}

/** What `exec` runs. */
export interface ExecOptions {
  args: string[];
  /** KEY=VALUE added to (or replacing in) the container's environment. */
  env?: string[];
  cwd?: string;
  /** docker -u: name|uid[:group|gid], resolved against the container's /etc/passwd and /etc/group. */
  user?: string;
  /** A pty for the process (docker exec -t). */
  terminal?: boolean;
  io?: ContainerIO;
}

/** docker exec: runs a process in every namespace and the cgroup of a running container. */
export async function execContainer(root: string, id: string, opts: ExecOptions): Promise<{ exitCode: number; signal?: string }> {
  const i = await infoOf(root, id);
  if (i.status.status !== 'running') throw new RuntimeError('INVALID_STATE', `container ${i.record.name} is ${i.status.status}, not running`);
  const env = new Map<string, string>();
  for (const e of [...i.record.env, ...(opts.env ?? [])]) env.set(e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e);
  let user: { uid: number; gid: number; additionalGids?: number[] } | undefined;
  if (opts.user !== undefined) {
    const rootfs = recordPaths(root, id).rootfs;
    const u = resolveUser(opts.user, await readFileInRoot(rootfs, '/etc/passwd'), await readFileInRoot(rootfs, '/etc/group'));
    user = { uid: u.uid, gid: u.gid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) };
  }
  return execInContainer(join(root, 'run'), id, {
    args: opts.args, env: [...env.values()], ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(user ? { user } : {}), ...(opts.terminal ? { terminal: true } : {}),
  }, { ...(opts.io ? { io: opts.io } : {}), init: false });
}

/** One `stats` sample of a running container (docker stats' figures). */
export interface ContainerStats {
  id: string;
  name: string;
  /** CPU use over the sampling interval, in percent of one CPU. */
  cpuPercent: number;
  memUsage: number;
  memLimit?: number;
  pids: number;
  blockRead: number;
  blockWrite: number;
  netRx: number;
  netTx: number;
}

/** Bytes received/sent on every interface but lo, from the netns of `pid`. */
async function netIo(pid: number | undefined): Promise<{ rx: number; tx: number }> {
  const text = pid ? await fsp.readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '') : '';
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

/** Samples the cgroup twice `intervalMs` apart (CPU needs two readings). Running containers only. */
export async function containerStats(root: string, id: string, intervalMs = 500): Promise<ContainerStats> {
  const i = await infoOf(root, id);
  if (!isLive(i) || !i.record.cgroup) throw new RuntimeError('INVALID_STATE', `container ${i.record.name} is ${i.status.status}, not running`);
  const cg = cgroupManagerFromPaths(i.record.cgroupName, i.record.cgroup.version, i.record.cgroup.paths);
  const a = await cg.stats();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, intervalMs));
  const b = await cg.stats();
  const wall = Number(process.hrtime.bigint() - t0);
  const net = await netIo(i.status.pid);
  const limit = b.memory?.limit;
  return {
    id: i.record.id, name: i.record.name,
    cpuPercent: a.cpu && b.cpu && wall > 0 ? ((b.cpu.usageNanos - a.cpu.usageNanos) / wall) * 100 : 0,
    memUsage: b.memory?.usage ?? 0,
    // v1 reports "no limit" as a huge number
    ...(limit !== undefined && limit < 2 ** 62 ? { memLimit: limit } : {}),
    pids: b.pids?.current ?? 0,
    blockRead: b.io?.readBytes ?? 0, blockWrite: b.io?.writeBytes ?? 0,
    netRx: net.rx, netTx: net.tx,
  };
}
