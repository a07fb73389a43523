import type { LinuxDeviceCgroup } from '../../spec/types.js';
import type { CgroupFs } from '../fs.js';
import { setFile } from './util.js';

/** One rule in devices.allow/deny syntax: `c 1:3 rwm`, `a` for everything. */
export function deviceRule(d: LinuxDeviceCgroup): string {
  const type = d.type ?? 'a';
  if (type === 'a') return 'a';
  const num = (n: number | undefined) => (n === undefined || n < 0 ? '*' : String(n));
  return `${type} ${num(d.major)}:${num(d.minor)} ${d.access ?? 'rwm'}`;
}

/**
 * v1 devices controller: rules written in order to devices.allow / devices.deny. (v2 needs an
 * eBPF program; not done: the container's own /dev holds only the default nodes.)
 */
export async function applyDevicesV1(fs: CgroupFs, dir: string, rules: readonly LinuxDeviceCgroup[]): Promise<void> {
  for (const r of rules) await setFile(fs, dir, r.allow ? 'devices.allow' : 'devices.deny', deviceRule(r));
}
