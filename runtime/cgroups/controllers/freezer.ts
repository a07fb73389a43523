import { RuntimeError } from '../../spec/errors.js';
import type { CgroupFs } from '../fs.js';
import type { FreezerState } from '../types.js';
import { parseKeyValues, readOptional, setFile } from './util.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds; FREEZING may take a while when tasks are in uninterruptible sleep. */
async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    if (await check()) return;
    if (Date.now() > end) throw new RuntimeError('CGROUP', `timed out waiting for ${what}`, { step: 'freeze' });
    await sleep(delay);
  }
}

/** v1 freezer.state: write the state, then wait until it reads back (FREEZING → FROZEN). */
export async function freezeV1(fs: CgroupFs, dir: string, state: FreezerState): Promise<void> {
  await setFile(fs, dir, 'freezer.state', state);
  await waitFor(async () => {
    const cur = await readOptional(fs, dir, 'freezer.state');
    if (cur !== state && state === 'FROZEN' && cur === 'FREEZING') await setFile(fs, dir, 'freezer.state', state);
    return cur === state;
  }, `cgroup ${dir} to become ${state}`);
}

/** v2 cgroup.freeze: write 1/0, then wait for `frozen` in cgroup.events. */
export async function freezeV2(fs: CgroupFs, dir: string, state: FreezerState): Promise<void> {
  const want = state === 'FROZEN' ? 1 : 0;
  await setFile(fs, dir, 'cgroup.freeze', want);
  await waitFor(async () => parseKeyValues(await readOptional(fs, dir, 'cgroup.events')).get('frozen') === want, `cgroup ${dir} to become ${state}`);
}
