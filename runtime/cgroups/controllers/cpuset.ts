import { dirname } from 'node:path';
import type { LinuxCpu } from '../../spec/types.js';
import type { CgroupFs } from '../fs.js';
import { readOptional, setFile } from './util.js';

/** cpuset.cpus / cpuset.mems (same file names on v1 and v2). */
export async function applyCpuset(fs: CgroupFs, dir: string, c: LinuxCpu): Promise<void> {
  if (c.cpus) await setFile(fs, dir, 'cpuset.cpus', c.cpus);
  if (c.mems) await setFile(fs, dir, 'cpuset.mems', c.mems);
}

/**
 * A new v1 cpuset starts with empty cpus and mems, and joining it then fails with ENOSPC; copy
 * the parent's values into each directory we created, top-down (runc `ensureParent`).
 */
export async function inheritCpusetV1(fs: CgroupFs, dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const cur = await readOptional(fs, dir, f);
      if (cur === undefined || cur !== '') continue;
      const parent = await readOptional(fs, dirname(dir), f);
      if (parent) await setFile(fs, dir, f, parent);
    }
  }
}
