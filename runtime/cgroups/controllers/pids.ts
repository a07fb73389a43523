import type { LinuxPids } from '../../spec/types.js';
import type { CgroupFs } from '../fs.js';
import type { CgroupStats } from '../types.js';
import { readNumber, setFile } from './util.js';

/** pids.max (v1 and v2); limit <= 0 means "max". */
export async function applyPids(fs: CgroupFs, dir: string, p: LinuxPids): Promise<void> {
  await setFile(fs, dir, 'pids.max', p.limit > 0 ? p.limit : 'max');
}

/** pids.current / pids.max. */
export async function pidsStats(fs: CgroupFs, dir: string): Promise<NonNullable<CgroupStats['pids']>> {
  const out: NonNullable<CgroupStats['pids']> = { current: (await readNumber(fs, dir, 'pids.current')) ?? 0 };
  const limit = await readNumber(fs, dir, 'pids.max');
  if (limit !== undefined) out.limit = limit;
  return out;
}
