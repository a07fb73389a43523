import type { LinuxCpu } from '../../spec/types.js';
import type { CgroupFs } from '../fs.js';
import type { CgroupStats } from '../types.js';
import { parseKeyValues, readNumber, readOptional, setFile } from './util.js';

/** v1 cpu controller: cpu.shares, cpu.cfs_period_us then cpu.cfs_quota_us (period first so the quota fits). */
export async function applyCpuV1(fs: CgroupFs, dir: string, c: LinuxCpu): Promise<void> {
  if (c.shares !== undefined && c.shares > 0) await setFile(fs, dir, 'cpu.shares', c.shares);
  if (c.period !== undefined && c.period > 0) await setFile(fs, dir, 'cpu.cfs_period_us', c.period);
  if (c.quota !== undefined && c.quota !== 0) await setFile(fs, dir, 'cpu.cfs_quota_us', c.quota);
  if (c.realtimePeriod !== undefined) await setFile(fs, dir, 'cpu.rt_period_us', c.realtimePeriod);
  if (c.realtimeRuntime !== undefined) await setFile(fs, dir, 'cpu.rt_runtime_us', c.realtimeRuntime);
}

/** v1 shares (2..262144) → v2 weight (1..10000), the conversion runc and crun use. */
export function sharesToWeight(shares: number): number {
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** v2 cpu controller: cpu.weight and cpu.max "quota period". */
export async function applyCpuV2(fs: CgroupFs, dir: string, c: LinuxCpu): Promise<void> {
  if (c.shares !== undefined && c.shares > 0) await setFile(fs, dir, 'cpu.weight', sharesToWeight(c.shares));
  if ((c.quota !== undefined && c.quota !== 0) || (c.period !== undefined && c.period > 0)) {
    const quota = c.quota === undefined || c.quota <= 0 ? 'max' : String(c.quota);
    await setFile(fs, dir, 'cpu.max', c.period !== undefined && c.period > 0 ? `${quota} ${c.period}` : quota);
  }
}

/** CPU figures (v1: cpuacct.usage in ns plus cpu.stat throttling). */
export async function cpuStatsV1(fs: CgroupFs, cpuDir: string | undefined, acctDir: string | undefined): Promise<NonNullable<CgroupStats['cpu']>> {
  const out: NonNullable<CgroupStats['cpu']> = { usageNanos: acctDir ? (await readNumber(fs, acctDir, 'cpuacct.usage')) ?? 0 : 0 };
  if (cpuDir) {
    const quota = await readNumber(fs, cpuDir, 'cpu.cfs_quota_us');
    const period = await readNumber(fs, cpuDir, 'cpu.cfs_period_us');
    const stat = parseKeyValues(await readOptional(fs, cpuDir, 'cpu.stat'));
    if (quota !== undefined) out.quota = quota;
    if (period !== undefined) out.period = period;
    if (stat.has('nr_throttled')) out.throttledPeriods = stat.get('nr_throttled')!;
  }
  return out;
}

/** CPU figures (v2: cpu.stat usage_usec, cpu.max). */
export async function cpuStatsV2(fs: CgroupFs, dir: string): Promise<NonNullable<CgroupStats['cpu']>> {
  const stat = parseKeyValues(await readOptional(fs, dir, 'cpu.stat'));
  const out: NonNullable<CgroupStats['cpu']> = { usageNanos: (stat.get('usage_usec') ?? 0) * 1000 };
  const max = await readOptional(fs, dir, 'cpu.max');
  if (max) {
    const [q, p] = max.split(/\s+/);
    if (q && q !== 'max') out.quota = Number(q);
    if (p) out.period = Number(p);
  }
  if (stat.has('nr_throttled')) out.throttledPeriods = stat.get('nr_throttled')!;
  return out;
}
