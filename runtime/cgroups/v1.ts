import { join } from 'node:path';
import { RuntimeError } from '../spec/errors.js';
import type { LinuxResources } from '../spec/types.js';
import { applyBlkioV1, ioStatsV1 } from './controllers/blkio.js';
import { applyCpuV1, cpuStatsV1 } from './controllers/cpu.js';
import { applyCpuset, inheritCpusetV1 } from './controllers/cpuset.js';
import { applyDevicesV1 } from './controllers/devices.js';
import { applyHugetlb } from './controllers/hugetlb.js';
import { freezeV1 } from './controllers/freezer.js';
import { applyMemoryV1, memoryStatsV1 } from './controllers/memory.js';
import { applyPids, pidsStats } from './controllers/pids.js';
import { requireController, setFile } from './controllers/util.js';
import { makeDirs, readProcs, removeEmptyParents, removeLeaf, signalAll } from './common.js';
import type { CgroupFs } from './fs.js';
import type { CgroupManager, CgroupStats, FreezerState } from './types.js';

/** Directories from just below `base` down to `dir`, top-down. */
function chainBelow(base: string, dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; d.length > base.length && d.startsWith(base); d = d.slice(0, d.lastIndexOf('/'))) out.unshift(d);
  return out;
}

/** The v1 controllers tsbuild uses. */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio', 'freezer', 'devices', 'hugetlb'] as const;

/** Where one v1 controller lives: the hierarchy's directory of the runtime's own cgroup, and ours. */
export interface V1Hierarchy { controller: string; base: string; dir: string }

/** cgroup v1: one directory per hierarchy; comounted controllers (cpu,cpuacct) share a directory. */
export class V1CgroupManager implements CgroupManager {
  readonly version = 1 as const;
  private readonly byController: Map<string, V1Hierarchy>;
  private readonly dirs: V1Hierarchy[];
  private removed = false;
  private created = false;
  private applied: string | undefined;

  constructor(private readonly fs: CgroupFs, hierarchies: V1Hierarchy[]) {
    this.byController = new Map(hierarchies.map((h) => [h.controller, h]));
    const seen = new Set<string>();
    this.dirs = hierarchies.filter((h) => !seen.has(h.dir) && seen.add(h.dir));
  }

  paths(): Record<string, string> {
    return Object.fromEntries([...this.byController].map(([c, h]) => [c, h.dir]));
  }

  private dir(c: string): string | undefined {
    return this.byController.get(c)?.dir;
  }

  /** Idempotent: a second call (e.g. by the container lifecycle after the caller) does nothing. */
  async create(): Promise<void> {
    if (this.created) return;
    this.removed = false;
    // The hierarchies are independent: made in parallel (about ten of them on a hybrid host).
    await Promise.all(this.dirs.map(async (h) => {
      await makeDirs(this.fs, h.base, h.dir);
      // Every level, not only the ones made here: a parent another process has just created may
      // not have its cpus/mems copied in yet.
      if (h.controller === 'cpuset') await inheritCpusetV1(this.fs, chainBelow(h.base, h.dir));
    }));
    this.created = true;
  }

  /** Writes the limits; applying the same resources again is a no-op. */
  async apply(r: LinuxResources): Promise<void> {
    const key = JSON.stringify(r);
    if (key === this.applied) return;
    if (r.unified && Object.keys(r.unified).length) throw new RuntimeError('CGROUP_UNSUPPORTED', 'linux.resources.unified needs cgroup v2', { step: 'cgroup' });
    // Each controller has its own directory: their files are written in parallel (in order within one).
    const jobs: (() => Promise<void>)[] = [];
    const { memory, pids, blockIO, devices } = r;
    if (memory && (memory.limit !== undefined || memory.swap !== undefined || memory.reservation !== undefined || memory.kernelTCP !== undefined || memory.swappiness !== undefined || memory.disableOOMKiller)) jobs.push(async () => applyMemoryV1(this.fs, requireController(this.dir('memory'), 'memory'), memory));
    if (r.cpu) {
      const c = r.cpu;
      if (c.shares !== undefined || c.quota !== undefined || c.period !== undefined || c.realtimeRuntime !== undefined) jobs.push(async () => applyCpuV1(this.fs, requireController(this.dir('cpu'), 'cpu'), c));
      if (c.cpus || c.mems) jobs.push(async () => applyCpuset(this.fs, requireController(this.dir('cpuset'), 'cpuset'), c));
    }
    if (pids) jobs.push(async () => applyPids(this.fs, requireController(this.dir('pids'), 'pids'), pids));
    if (blockIO) jobs.push(async () => applyBlkioV1(this.fs, requireController(this.dir('blkio'), 'blkio'), blockIO));
    const huge = r.hugepageLimits;
    if (huge?.length) jobs.push(async () => applyHugetlb(this.fs, requireController(this.dir('hugetlb'), 'hugetlb'), huge, 1));
    const dev = this.dir('devices');
    if (devices?.length && dev) jobs.push(async () => applyDevicesV1(this.fs, dev, devices));
    await Promise.all(jobs.map((j) => j()));
    this.applied = key;
  }

  async addProcess(pid: number): Promise<void> {
    await Promise.all(this.dirs.map((h) => setFile(this.fs, h.dir, 'cgroup.procs', pid)));
  }

  async pids(): Promise<number[]> {
    const d = this.dir('pids') ?? this.dir('memory') ?? this.dirs[0]?.dir;
    return d ? readProcs(this.fs, d) : [];
  }

  async freeze(state: FreezerState): Promise<void> {
    await freezeV1(this.fs, requireController(this.dir('freezer'), 'freezer'), state);
  }

  async stats(): Promise<CgroupStats> {
    const out: CgroupStats = {};
    const mem = this.dir('memory');
    const pids = this.dir('pids');
    const blk = this.dir('blkio');
    if (mem) out.memory = await memoryStatsV1(this.fs, mem);
    if (this.dir('cpu') || this.dir('cpuacct')) out.cpu = await cpuStatsV1(this.fs, this.dir('cpu'), this.dir('cpuacct'));
    if (pids) out.pids = await pidsStats(this.fs, pids);
    if (blk) out.io = await ioStatsV1(this.fs, blk);
    return out;
  }

  async kill(signal: number): Promise<void> {
    signalAll(await this.pids(), signal);
    // A frozen task only dies once thawed.
    const fz = this.dir('freezer');
    if (fz && signal === 9 && (await this.fs.read(join(fz, 'freezer.state')).catch(() => '')).trim() !== 'THAWED') {
      await freezeV1(this.fs, fz, 'THAWED').catch(() => undefined);
    }
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    const killLeft = async () => {
      const left = (await Promise.all(this.dirs.map((h) => readProcs(this.fs, h.dir)))).flat();
      if (left.length) await this.kill(9);
    };
    await killLeft();
    // independent hierarchies: removed in parallel (a second kill from another one is harmless)
    await Promise.all(this.dirs.map(async (h) => {
      await removeLeaf(this.fs, h.dir, killLeft);
      await removeEmptyParents(this.fs, h.base, h.dir);
    }));
    this.removed = true;
    this.created = false;
    this.applied = undefined;
  }
}
