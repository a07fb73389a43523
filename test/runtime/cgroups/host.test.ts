import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCgroupManager, detectCgroupLayout } from '../../../runtime/cgroups/manager.js';

async function whyNot(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'cgroup tests need root';
  try {
    const l = await detectCgroupLayout();
    if (l.version === 1) {
      for (const c of ['memory', 'pids', 'freezer', 'cpu']) if (!l.mounts[c]) return `cgroup v1 controller ${c} is not mounted`;
    }
  } catch (e) {
    return `no usable cgroup hierarchy: ${(e as Error).message}`;
  }
  return undefined;
}
const why = await whyNot();
if (why) console.warn(`skip: ${why}`);

describe('cgroup manager on this host', () => {
  it.skipIf(!!why)('creates, limits, joins, reports, freezes and removes a real cgroup', async () => {
    // its own parent, so that containers of tests running in parallel never share it
    const name = `tsbuild-cgtest-${process.pid}/c${Date.now()}`;
    const m = await createCgroupManager({ name });
    const paths = Object.values(m.paths());
    await m.create();
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      for (const p of paths) expect(existsSync(p)).toBe(true);
      const r = m.version === 1
        ? { memory: { limit: 64 << 20, swap: 64 << 20 }, pids: { limit: 10 }, cpu: { quota: 50000, period: 100000 } }
        : { memory: { limit: 64 << 20 }, pids: { limit: 10 }, cpu: { quota: 50000, period: 100000 } };
      await m.apply(r);
      await m.addProcess(child.pid!);
      expect(await m.pids()).toEqual([child.pid]);
      const self = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8');
      expect(self).toContain(name);
      const s = await m.stats();
      expect(s.memory!.limit).toBe(64 << 20);
      expect(typeof s.memory!.usage).toBe('number');
      expect(s.pids).toEqual({ current: 1, limit: 10 });
      expect(s.cpu!.quota).toBe(50000);
      if (m.version === 1) expect(readFileSync(join(m.paths().cpu!, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000');
      await m.freeze('FROZEN');
      expect(readFileSync(`/proc/${child.pid}/status`, 'utf8')).toMatch(/State:\s+[SD]/);
      await m.freeze('THAWED');
      // a value the kernel refuses names the file
      await expect(m.apply({ cpu: { quota: 10, period: 100000 } })).rejects.toThrow(/setting cpu\.(cfs_quota_us|max) of cgroup .*tsbuild-cgtest-/);
      const exited = new Promise((r) => child.once('exit', r));
      await m.remove();
      await exited;
      expect(child.signalCode).toBe('SIGKILL');
      for (const p of paths) expect(existsSync(p)).toBe(false);
      for (const p of paths) expect(existsSync(join(p, '..'))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await m.remove();
    }
  });

  // cgroup v2 core files (procs, freeze, kill, cpu.stat) work without controllers, so the v2
  // manager is exercised for real on the unified hierarchy of a hybrid host too.
  const v2root = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : existsSync('/sys/fs/cgroup/unified/cgroup.controllers') ? '/sys/fs/cgroup/unified' : undefined;
  const whyV2 = why ?? (v2root ? undefined : 'no cgroup2 hierarchy is mounted');
  if (whyV2 && !why) console.warn(`skip: ${whyV2}`);
  it.skipIf(!!whyV2)('v2 manager on the real cgroup2 hierarchy: join, freeze, kill, remove', async () => {
    const name = `tsbuild-cgtest2-${process.pid}/c${Date.now()}`;
    const m = await createCgroupManager({ name }, { fsRoot: v2root! });
    expect(m.version).toBe(2);
    await m.create();
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await m.addProcess(child.pid!);
      expect(await m.pids()).toEqual([child.pid]);
      expect(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')).toMatch(new RegExp(`^0::.*${name}$`, 'm'));
      await m.freeze('FROZEN');
      expect(readFileSync(join(m.paths().unified!, 'cgroup.events'), 'utf8')).toContain('frozen 1');
      await m.freeze('THAWED');
      const s = await m.stats();
      expect(typeof s.cpu!.usageNanos).toBe('number');
      await m.kill(9);
      await exited;
      expect(child.signalCode).toBe('SIGKILL');
      await m.remove();
      expect(existsSync(m.paths().unified!)).toBe(false);
      expect(existsSync(join(m.paths().unified!, '..'))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await m.remove();
    }
  });
});
