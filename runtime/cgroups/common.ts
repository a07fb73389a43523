import { join } from 'node:path';
import { RuntimeError } from '../spec/errors.js';
import type { CgroupFs } from './fs.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One line of /proc/self/cgroup: hierarchy id, controllers ('' for v2), path. */
export interface SelfCgroupLine { id: string; controllers: string[]; path: string }

/** Parses /proc/<pid>/cgroup. */
export function parseProcCgroup(text: string): SelfCgroupLine[] {
  const out: SelfCgroupLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (m) out.push({ id: m[1]!, controllers: m[2] ? m[2].split(',') : [], path: m[3] || '/' });
  }
  return out;
}

/** Reads cgroup.procs of `dir`; [] when the directory is gone. */
export async function readProcs(fs: CgroupFs, dir: string): Promise<number[]> {
  let text: string;
  try {
    text = await fs.read(join(dir, 'cgroup.procs'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RuntimeError('CGROUP', `reading cgroup.procs of cgroup ${dir}`, { cause: e, step: 'cgroup' });
  }
  return text.split('\n').filter(Boolean).map(Number);
}

/** Sends `signal` to each pid, ignoring ones that already exited. */
export function signalAll(pids: readonly number[], signal: number): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new RuntimeError('CGROUP', `sending signal ${signal} to pid ${pid}`, { cause: e, step: 'kill' });
    }
  }
}

/**
 * Creates `target` (mkdir -p) and returns the directories made, top-down. Retries when a
 * concurrent `removeEmptyParents` of a sibling container removed a shared parent mid-way.
 */
export async function makeDirs(fs: CgroupFs, base: string, target: string): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      const first = await fs.mkdirp(target);
      if (!first) return [];
      const rel = target.slice(first.length).split('/').filter(Boolean);
      const dirs = [first];
      for (const r of rel) dirs.push(join(dirs[dirs.length - 1]!, r));
      return dirs.filter((d) => d.length > base.length);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue;
      throw new RuntimeError('CGROUP', `creating cgroup ${target}`, { cause: e, step: 'cgroup' });
    }
  }
}

/**
 * Removes one leaf cgroup directory, retrying EBUSY while the kernel finishes tearing down
 * exited tasks (a SIGKILLed task leaves cgroup.procs a moment after it is reaped).
 */
export async function removeLeaf(fs: CgroupFs, dir: string, onBusy: () => Promise<void>): Promise<void> {
  for (let delay = 1, waited = 0; ; delay = Math.min(delay * 2, 100)) {
    try {
      await fs.rmdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || waited > 10_000) throw new RuntimeError('CGROUP_BUSY', `removing cgroup ${dir}`, { cause: e, step: 'cgroup' });
      await onBusy();
      await sleep(delay);
      waited += delay;
    }
  }
}

/** Best effort: removes now-empty parents between `leaf` (exclusive) and `base` (exclusive). */
export async function removeEmptyParents(fs: CgroupFs, base: string, leaf: string): Promise<void> {
  let dir = leaf;
  for (;;) {
    const parent = dir.slice(0, dir.lastIndexOf('/'));
    if (parent.length <= base.length || !parent.startsWith(base)) return;
    try {
      await fs.rmdir(parent);
    } catch {
      return; // shared with a sibling container (EBUSY/ENOTEMPTY) or already gone
    }
    dir = parent;
  }
}
