import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type { Hooks } from './hooks.js';

/** Container statuses of the runtime-spec state, plus `paused` (runc). */
export type ContainerStatus = 'creating' | 'created' | 'running' | 'stopped' | 'paused';

/** The runtime-spec state JSON (https://github.com/opencontainers/runtime-spec/blob/main/runtime.md#state) and runc's extra fields. */
export interface ContainerState {
  ociVersion: string;
  id: string;
  status: ContainerStatus;
  /** Host pid of the container's first process (still reported once stopped, as crun does). */
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
  /** runc extras */
  rootfs?: string;
  created?: string;
  owner?: string;
}

/** What tsbuild persists in `<stateRoot>/<id>/state.json`. */
export interface StoredState {
  ociVersion: string;
  id: string;
  bundle: string;
  rootfs?: string;
  annotations?: Record<string, string>;
  created: string;
  /** last status written by a lifecycle operation; the live status is derived (see deriveStatus) */
  status: ContainerStatus;
  pid?: number;
  /** field 22 of /proc/PID/stat when pid was recorded: detects pid reuse */
  pidStartTime?: string;
  helperPid?: number;
  /** cgroup name given to the CgroupManager, when the container has one */
  cgroupName?: string;
  init?: boolean;
  exitCode?: number;
  exitSignal?: string;
  /** config.json's hooks as they were at create (later edits of config.json do not count) */
  hooks?: Hooks;
}

/** The runtime-spec version these states claim. */
export const OCI_VERSION = '1.0.2';

/** Files of one container's state directory. */
export function statePaths(stateRoot: string, id: string): { dir: string; state: string; fifo: string; exit: string; lock: string } {
  const dir = join(stateRoot, id);
  return { dir, state: join(dir, 'state.json'), fifo: join(dir, 'exec.fifo'), exit: join(dir, 'exit.json'), lock: join(dir, 'lock') };
}

/** Start time of a process (clock ticks since boot), or undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined; // a zombie has finished running
    return rest[19];
  } catch {
    return undefined;
  }
}

/** True when `pid` still names the process recorded with `startTime`. */
export function isSameProcess(pid: number | undefined, startTime: string | undefined): boolean {
  if (!pid || !startTime) return false;
  return processStartTime(pid) === startTime;
}

/** Reads state.json; CONTAINER_NOT_FOUND when absent. */
export async function readState(stateRoot: string, id: string): Promise<StoredState> {
  const p = statePaths(stateRoot, id);
  let text: string;
  try {
    text = await fsp.readFile(p.state, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RuntimeError('CONTAINER_NOT_FOUND', `container ${id} does not exist`, { cause: e });
    throw new RuntimeError('INVALID_STATE', `reading the state of container ${id}`, { cause: e });
  }
  try {
    return JSON.parse(text) as StoredState;
  } catch (e) {
    throw new RuntimeError('INVALID_STATE', `parsing the state of container ${id}`, { cause: e });
  }
}

/** Writes state.json atomically (temp file + rename). */
export async function writeState(stateRoot: string, s: StoredState): Promise<void> {
  const p = statePaths(stateRoot, s.id);
  const tmp = `${p.state}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify(s)}\n`);
  await fsp.rename(tmp, p.state);
}

/** Reads the exit record the helper left, if any. */
export async function readExit(stateRoot: string, id: string): Promise<{ exitCode: number; signal?: string } | undefined> {
  try {
    return JSON.parse(await fsp.readFile(statePaths(stateRoot, id).exit, 'utf8')) as { exitCode: number; signal?: string };
  } catch {
    return undefined;
  }
}

/**
 * The live status: a recorded pid that no longer runs (or was reused) means stopped, whatever
 * was written last; so `state` tells the truth even when the creating process is gone.
 */
export async function deriveStatus(stateRoot: string, s: StoredState): Promise<ContainerStatus> {
  if (s.status === 'stopped') return 'stopped';
  if (s.pid === undefined) {
    return s.helperPid && processStartTime(s.helperPid) !== undefined ? 'creating' : 'stopped';
  }
  if (!isSameProcess(s.pid, s.pidStartTime)) return 'stopped';
  if (s.status === 'paused') return 'paused';
  try {
    await fsp.access(statePaths(stateRoot, s.id).fifo);
    return 'created';
  } catch {
    return 'running';
  }
}

/**
 * Takes the container's lock (an O_EXCL file holding our pid; a lock whose owner died is
 * broken). Returns the release function. LOCKED after `timeoutMs`.
 */
export async function lockContainer(stateRoot: string, id: string, timeoutMs = 5000): Promise<() => Promise<void>> {
  const { lock } = statePaths(stateRoot, id);
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    try {
      const fh = await fsp.open(lock, 'wx');
      await fh.writeFile(`${process.pid} ${processStartTime(process.pid) ?? ''}`);
      await fh.close();
      return async () => {
        await fsp.rm(lock, { force: true });
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new RuntimeError('CONTAINER_NOT_FOUND', `container ${id} does not exist`, { cause: e });
      if (code !== 'EEXIST') throw new RuntimeError('LOCKED', `locking container ${id}`, { cause: e });
      const owner = await fsp.readFile(lock, 'utf8').catch(() => '');
      const [pid, start] = owner.split(' ');
      if (owner && !isSameProcess(Number(pid), start)) {
        await fsp.rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new RuntimeError('LOCKED', `container ${id} is locked by process ${pid}`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
