import { join } from 'node:path';
import type { LinuxResources } from '../spec/types.js';
import { applyIoV2, ioStatsV2 } from './controllers/blkio.js';
import { applyCpuV2, cpuStatsV2 } from './controllers/cpu.js';
import { applyCpuset } from './controllers/cpuset.js';
import { freezeV2 } from './controllers/freezer.js';
import { applyMemoryV2, memoryStatsV2 } from './controllers/memory.js';
import { applyHugetlb } from './controllers/hugetlb.js';
import { applyPids, pidsStats } from './controllers/pids.js';
import { readOptional, setFile } from './controllers/util.js';
import { makeDirs, readProcs, removeEmptyParents, removeLeaf, signalAll } from './common.js';
import type { CgroupFs } from './fs.js';
import type { CgroupManager, CgroupStats, FreezerState } from './types.js';
import { RuntimeError } from '../spec/errors.js';

const WANTED = ['cpu', 'cpuset', 'io', 'memory', 'pids'];

/** cgroup v2: one directory in the unified hierarchy; controllers enabled down the path via cgroup.subtree_control. */
export class V2CgroupManager implements CgroupManager {
  readonly version = 2 as const;
  private removed = false;
  private created = false;
  private applied: string | undefined;
  private controllers = new Set<string>();

  /** `base`: the existing directory our cgroup is created under; `dir`: ours. */
  constructor(private readonly fs: CgroupFs, private readonly base: string, private readonly dir: string) {}

  paths(): Record<string, string> {
    return { unified: this.dir };
  }

  /** Idempotent: a second call (e.g. by the container lifecycle after the caller) does nothing. */
  async create(): Promise<void> {
    if (this.created) return;
    this.removed = false;
    const made = await makeDirs(this.fs, this.base, this.dir);
    // Enable controllers top-down on every level above our leaf (the no-internal-processes rule
    // is why `base` is a sibling of the runtime's own cgroup, never the cgroup holding it).
    const levels = [this.base, ...made.slice(0, -1)];
    for (const d of levels) {
      const avail = ((await readOptional(this.fs, d, 'cgroup.controllers')) ?? '').split(/\s+/).filter((c) => WANTED.includes(c));
      const on = new Set(((await readOptional(this.fs, d, 'cgroup.subtree_control')) ?? '').split(/\s+/));
      const add = avail.filter((c) => !on.has(c));
      if (add.length) await setFile(this.fs, d, 'cgroup.subtree_control', add.map((c) => `+${c}`).join(' ')).catch(() => undefined);
    }
    this.controllers = new Set(((await readOptional(this.fs, this.dir, 'cgroup.controllers')) ?? '').split(/\s+/).filter(Boolean));
    this.created = true;
  }

  private need(c: string): void {
    if (!this.controllers.has(c)) throw new RuntimeError('CGROUP_UNSUPPORTED', `cgroup v2 controller ${c} is not enabled for ${this.dir}`, { step: 'cgroup' });
  }

  /** Writes the limits; applying the same resources again is a no-op. */
  async apply(r: LinuxResources): Promise<void> {
    const key = JSON.stringify(r);
    if (key === this.applied) return;
    if (r.memory && (r.memory.limit !== undefined || r.memory.swap !== undefined || r.memory.reservation !== undefined)) { this.need('memory'); await applyMemoryV2(this.fs, this.dir, r.memory); }
    if (r.cpu) {
      if (r.cpu.shares !== undefined || r.cpu.quota !== undefined || r.cpu.period !== undefined) { this.need('cpu'); await applyCpuV2(this.fs, this.dir, r.cpu); }
      if (r.cpu.cpus || r.cpu.mems) { this.need('cpuset'); await applyCpuset(this.fs, this.dir, r.cpu); }
    }
    if (r.pids) { this.need('pids'); await applyPids(this.fs, this.dir, r.pids); }
    if (r.blockIO) { this.need('io'); await applyIoV2(this.fs, this.dir, r.blockIO); }
    if (r.hugepageLimits?.length) { this.need('hugetlb'); await applyHugetlb(this.fs, this.dir, r.hugepageLimits, 2); }
    for (const [k, v] of Object.entries(r.unified ?? {})) {
      if (k.includes('/') || k.startsWith('.')) throw new RuntimeError('INVALID_RESOURCE', `invalid unified cgroup key ${k}`);
      await setFile(this.fs, this.dir, k, v);
    }
    this.applied = key;
  }

  async addProcess(pid: number): Promise<void> {
    await setFile(this.fs, this.dir, 'cgroup.procs', pid);
  }

  pids(): Promise<number[]> {
    return readProcs(this.fs, this.dir);
  }

  freeze(state: FreezerState): Promise<void> {
    return freezeV2(this.fs, this.dir, state);
  }

  async stats(): Promise<CgroupStats> {
    const out: CgroupStats = {};
    if (this.controllers.has('memory')) out.memory = await memoryStatsV2(this.fs, this.dir);
    out.cpu = await cpuStatsV2(this.fs, this.dir);
    if (this.controllers.has('pids')) out.pids = await pidsStats(this.fs, this.dir);
    if (this.controllers.has('io')) out.io = await ioStatsV2(this.fs, this.dir);
    return out;
  }

  async kill(signal: number): Promise<void> {
    if (signal === 9 && (await this.fs.exists(join(this.dir, 'cgroup.kill')))) {
      await setFile(this.fs, this.dir, 'cgroup.kill', 1);
      return;
    }
    signalAll(await this.pids(), signal);
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    const killLeft = async () => {
      if ((await this.pids()).length) await this.kill(9);
    };
    await killLeft();
    await removeLeaf(this.fs, this.dir, killLeft);
    await removeEmptyParents(this.fs, this.base, this.dir);
    this.removed = true;
    this.created = false;
    this.applied = undefined;
  }
}
