import { join } from 'node:path';
import { RuntimeError } from '../../spec/errors.js';
import type { CgroupFs } from '../fs.js';

/** Writes one control file, wrapping the kernel's refusal into a RuntimeError naming file and value. */
export async function setFile(fs: CgroupFs, dir: string, file: string, value: string | number): Promise<void> {
  try {
    await fs.write(join(dir, file), String(value));
  } catch (e) {
    // the cause (Node's errno error) carries the errno name into the printed chain
    throw new RuntimeError('CGROUP', `setting ${file} of cgroup ${dir} to ${value}`, { cause: e, step: 'cgroup' });
  }
}

/** Reads one control file, or undefined when it does not exist. */
export async function readOptional(fs: CgroupFs, dir: string, file: string): Promise<string | undefined> {
  try {
    return (await fs.read(join(dir, file))).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RuntimeError('CGROUP', `reading ${file} of cgroup ${dir}`, { cause: e, step: 'cgroup' });
  }
}

/** Reads a numeric control file; 'max' and v1's huge "unlimited" values become undefined. */
export async function readNumber(fs: CgroupFs, dir: string, file: string): Promise<number | undefined> {
  const v = await readOptional(fs, dir, file);
  if (v === undefined || v === 'max' || v === '') return undefined;
  const n = Number(v.split(/\s+/)[0]);
  if (!Number.isFinite(n) || n >= 0x7ffffffffffff000) return undefined;
  return n;
}

/** Parses "key value" lines (memory.stat, cpu.stat, cgroup.events). */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** Throws CGROUP_UNSUPPORTED when a resource is asked for but its controller is missing. */
export function requireController(dir: string | undefined, controller: string): string {
  if (!dir) throw new RuntimeError('CGROUP_UNSUPPORTED', `cgroup controller ${controller} is not available on this host`, { step: 'cgroup' });
  return dir;
}
