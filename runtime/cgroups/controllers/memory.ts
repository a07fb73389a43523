import { RuntimeError } from '../../spec/errors.js';
import type { LinuxMemory } from '../../spec/types.js';
import type { CgroupFs } from '../fs.js';
import type { CgroupStats } from '../types.js';
import { parseKeyValues, readNumber, readOptional, setFile } from './util.js';

/**
 * v1 memory controller: memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory+swap,
 * the spec's `swap` semantics). The kernel requires memsw >= limit at every moment, so the
 * order of the two writes depends on the current limit (runc `setMemoryAndSwap`).
 */
export async function applyMemoryV1(fs: CgroupFs, dir: string, m: LinuxMemory): Promise<void> {
  const hasSwap = await fs.exists(`${dir}/memory.memsw.limit_in_bytes`);
  if (m.swap !== undefined && m.swap !== 0 && !hasSwap && m.swap !== -1) {
    throw new RuntimeError('CGROUP_UNSUPPORTED', `memory-swap limit needs swap accounting (memory.memsw.limit_in_bytes missing in ${dir})`, { step: 'cgroup' });
  }
  const limit = m.limit;
  const swap = hasSwap ? m.swap : undefined;
  if (limit !== undefined && swap !== undefined) {
    // memsw >= limit must hold after each write: raise memsw first only when it exceeds the
    // current limit (runc `setMemoryAndSwap`).
    const raw = await readOptional(fs, dir, 'memory.limit_in_bytes');
    const cur = raw === undefined ? Number.POSITIVE_INFINITY : Number(raw);
    if (swap === -1 || cur < swap) {
      await setFile(fs, dir, 'memory.memsw.limit_in_bytes', swap);
      await setFile(fs, dir, 'memory.limit_in_bytes', limit);
    } else {
      await setFile(fs, dir, 'memory.limit_in_bytes', limit);
      await setFile(fs, dir, 'memory.memsw.limit_in_bytes', swap);
    }
  } else if (limit !== undefined) {
    await setFile(fs, dir, 'memory.limit_in_bytes', limit);
  } else if (swap !== undefined) {
    await setFile(fs, dir, 'memory.memsw.limit_in_bytes', swap);
  }
  if (m.reservation !== undefined) await setFile(fs, dir, 'memory.soft_limit_in_bytes', m.reservation);
  if (m.swappiness !== undefined && m.swappiness >= 0 && m.swappiness <= 100) await setFile(fs, dir, 'memory.swappiness', m.swappiness);
  if (m.disableOOMKiller) await setFile(fs, dir, 'memory.oom_control', 1);
  // kernelTCP (deprecated in the spec, still in v1 kernels); `kernel` (kmem.limit_in_bytes) is
  // refused by kernels >= 5.16 and not written, as crun and runc 1.1 do
  if (m.kernelTCP !== undefined && (await fs.exists(`${dir}/memory.kmem.tcp.limit_in_bytes`))) await setFile(fs, dir, 'memory.kmem.tcp.limit_in_bytes', m.kernelTCP);
}

/** v2 memory controller: memory.max, memory.swap.max (= spec swap − limit), memory.low. */
export async function applyMemoryV2(fs: CgroupFs, dir: string, m: LinuxMemory): Promise<void> {
  if (m.limit !== undefined) await setFile(fs, dir, 'memory.max', m.limit === -1 ? 'max' : m.limit);
  if (m.swap !== undefined && m.swap !== 0) {
    let v: string | number = 'max';
    if (m.swap !== -1) {
      if (m.limit === undefined || m.limit === -1) throw new RuntimeError('INVALID_RESOURCE', 'memory-swap needs a memory limit on cgroup v2');
      v = m.swap - m.limit;
    }
    if (await fs.exists(`${dir}/memory.swap.max`)) await setFile(fs, dir, 'memory.swap.max', v);
    else if (v !== 'max' && v !== 0) throw new RuntimeError('CGROUP_UNSUPPORTED', `memory-swap limit needs memory.swap.max in ${dir}`, { step: 'cgroup' });
  }
  if (m.reservation !== undefined) await setFile(fs, dir, 'memory.low', m.reservation);
}

/** Memory figures (v1). */
export async function memoryStatsV1(fs: CgroupFs, dir: string): Promise<NonNullable<CgroupStats['memory']>> {
  const oom = parseKeyValues(await readOptional(fs, dir, 'memory.oom_control'));
  const out: NonNullable<CgroupStats['memory']> = { usage: (await readNumber(fs, dir, 'memory.usage_in_bytes')) ?? 0 };
  const max = await readNumber(fs, dir, 'memory.max_usage_in_bytes');
  const limit = await readNumber(fs, dir, 'memory.limit_in_bytes');
  const swap = await readNumber(fs, dir, 'memory.memsw.limit_in_bytes');
  const fail = await readNumber(fs, dir, 'memory.failcnt');
  if (max !== undefined) out.maxUsage = max;
  if (limit !== undefined) out.limit = limit;
  if (swap !== undefined) out.swapLimit = swap;
  if (fail !== undefined) out.failcnt = fail;
  if (oom.has('oom_kill')) out.oomKills = oom.get('oom_kill')!;
  return out;
}

/** Memory figures (v2). */
export async function memoryStatsV2(fs: CgroupFs, dir: string): Promise<NonNullable<CgroupStats['memory']>> {
  const events = parseKeyValues(await readOptional(fs, dir, 'memory.events'));
  const out: NonNullable<CgroupStats['memory']> = { usage: (await readNumber(fs, dir, 'memory.current')) ?? 0 };
  const peak = await readNumber(fs, dir, 'memory.peak');
  const limit = await readNumber(fs, dir, 'memory.max');
  if (peak !== undefined) out.maxUsage = peak;
  if (limit !== undefined) out.limit = limit;
  if (events.has('max')) out.failcnt = events.get('max')!;
  if (events.has('oom_kill')) out.oomKills = events.get('oom_kill')!;
  return out;
}
