import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCgroupManager, detectCgroupLayout } from '../../../runtime/cgroups/manager.js';
import { parseProcCgroup } from '../../../runtime/cgroups/common.js';
import { sharesToWeight } from '../../../runtime/cgroups/controllers/cpu.js';
import { blkioToIoWeight } from '../../../runtime/cgroups/controllers/blkio.js';
import { deviceRule } from '../../../runtime/cgroups/controllers/devices.js';
import { RuntimeError } from '../../../runtime/spec/errors.js';
import { copyTree, fakeCgroupFs, listDirs } from './fake-cgroupfs.js';

const disposers: (() => void)[] = [];
afterEach(() => { while (disposers.length) disposers.pop()!(); });
function tree(name: 'v1' | 'v2' | 'hybrid') {
  const t = copyTree(name);
  disposers.push(t.dispose);
  return t.root;
}
const read = (p: string) => readFileSync(p, 'utf8').trim();
const SELF_V1 = '10:hugetlb:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/outer\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n';

describe('detectCgroupLayout', () => {
  it('v1 per-controller mounts', async () => {
    const root = tree('v1');
    const l = await detectCgroupLayout(root);
    expect(l.version).toBe(1);
    expect(Object.keys((l as { mounts: object }).mounts).sort()).toEqual(['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids']);
  });
  it('v2 when the root is cgroup2', async () => {
    const root = tree('v2');
    expect(await detectCgroupLayout(root)).toEqual({ version: 2, mount: root });
  });
  it('hybrid: v1 while the unified hierarchy lacks controllers, v2 once it has them', async () => {
    const root = tree('hybrid');
    expect((await detectCgroupLayout(root)).version).toBe(1);
    writeFileSync(join(root, 'unified/cgroup.controllers'), 'cpu memory pids\n');
    expect(await detectCgroupLayout(root)).toEqual({ version: 2, mount: join(root, 'unified') });
  });
  it('parses /proc/self/cgroup', () => {
    expect(parseProcCgroup('4:memory:/a/b\n1:cpu,cpuacct:/\n0::/user.slice\n')).toEqual([
      { id: '4', controllers: ['memory'], path: '/a/b' },
      { id: '1', controllers: ['cpu', 'cpuacct'], path: '/' },
      { id: '0', controllers: [], path: '/user.slice' },
    ]);
  });
});

describe('v1 manager on a fake tree', () => {
  it('nests under the own cgroup, applies every controller, reports stats and removes everything', async () => {
    const root = tree('v1');
    const before = listDirs(root);
    const fs = fakeCgroupFs(root, 1);
    const m = await createCgroupManager({ name: 'tsbuild/c1' }, { fsRoot: root, fs, selfCgroup: SELF_V1 });
    expect(m.version).toBe(1);
    expect(m.paths().memory).toBe(join(root, 'memory/outer/tsbuild/c1'));
    expect(m.paths().pids).toBe(join(root, 'pids/tsbuild/c1'));
    await m.create();
    // cpuset inherits the parent's cpus/mems on every level created
    expect(read(join(root, 'cpuset/tsbuild/cpuset.cpus'))).toBe('0-1');
    expect(read(join(root, 'cpuset/tsbuild/c1/cpuset.mems'))).toBe('0');
    await m.apply({
      memory: { limit: 64 << 20, swap: 128 << 20 },
      cpu: { shares: 512, quota: 150000, period: 100000, cpus: '1' },
      pids: { limit: 20 },
      blockIO: { weight: 300 },
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }],
    });
    const d = (c: string) => m.paths()[c]!;
    expect(read(join(d('memory'), 'memory.limit_in_bytes'))).toBe(String(64 << 20));
    expect(read(join(d('memory'), 'memory.memsw.limit_in_bytes'))).toBe(String(128 << 20));
    // from unlimited: the limit first, so that memsw >= limit holds at every step
    const memWrites = fs.writes.filter(([p]) => p.startsWith('memory/')).map(([p]) => p.split('/').pop());
    expect(memWrites).toEqual(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
    expect(read(join(d('cpu'), 'cpu.cfs_quota_us'))).toBe('150000');
    expect(read(join(d('cpu'), 'cpu.cfs_period_us'))).toBe('100000');
    expect(read(join(d('cpu'), 'cpu.shares'))).toBe('512');
    expect(read(join(d('cpuset'), 'cpuset.cpus'))).toBe('1');
    expect(read(join(d('pids'), 'pids.max'))).toBe('20');
    expect(read(join(d('blkio'), 'blkio.bfq.weight'))).toBe('300');
    expect(fs.writes.filter(([p]) => p.startsWith('devices/')).map(([p, v]) => `${p.split('/').pop()} ${v}`)).toEqual(['devices.deny a', 'devices.allow c 1:3 rwm']);
    await m.addProcess(4242);
    expect(fs.writes.filter(([p]) => p.endsWith('cgroup.procs')).length).toBe(8);
    expect(await m.pids()).toEqual([4242]);
    const s = await m.stats();
    expect(s).toEqual({
      memory: { usage: 1048576, maxUsage: 2097152, limit: 64 << 20, swapLimit: 128 << 20, failcnt: 0, oomKills: 0 },
      cpu: { usageNanos: 123456789, quota: 150000, period: 100000, throttledPeriods: 0 },
      pids: { current: 0, limit: 20 },
      io: { readBytes: 4096, writeBytes: 8192 },
    });
    await m.freeze('FROZEN');
    expect(read(join(d('freezer'), 'freezer.state'))).toBe('FROZEN');
    await m.freeze('THAWED');
    // the fake pid is not a process: empty cgroup.procs as the kernel would after it exits
    for (const dir of new Set(Object.values(m.paths()))) writeFileSync(join(dir, 'cgroup.procs'), '');
    await m.remove();
    await m.remove();
    expect(listDirs(root)).toEqual(before);
  });

  it('raising memory above the current limit writes memsw first', async () => {
    const root = tree('v1');
    const fs = fakeCgroupFs(root, 1);
    const m = await createCgroupManager({ name: 'tsbuild/c2' }, { fsRoot: root, fs, selfCgroup: SELF_V1 });
    await m.create();
    await m.apply({ memory: { limit: 64 << 20, swap: 64 << 20 } });
    fs.writes.length = 0;
    await m.apply({ memory: { limit: 128 << 20, swap: 256 << 20 } });
    expect(fs.writes.map(([p]) => p.split('/').pop())).toEqual(['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']);
    fs.writes.length = 0;
    await m.apply({ memory: { limit: 32 << 20, swap: 32 << 20 } });
    expect(fs.writes.map(([p]) => p.split('/').pop())).toEqual(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
    await m.remove();
  });

  it('fails with CGROUP_UNSUPPORTED naming a missing controller, and rejects bad names', async () => {
    const root = tree('hybrid');
    const m = await createCgroupManager({ name: 'tsbuild/c3' }, { fsRoot: root, fs: fakeCgroupFs(root, 1), selfCgroup: SELF_V1 });
    await m.create();
    await expect(m.apply({ blockIO: { weight: 100 } })).rejects.toThrow('cgroup controller blkio is not available on this host');
    await expect(m.freeze('FROZEN')).rejects.toMatchObject({ code: 'CGROUP_UNSUPPORTED' });
    await m.remove();
    expect(listDirs(root).filter((d) => d.includes('tsbuild'))).toEqual([]);
    await expect(createCgroupManager({ name: '../escape' }, { fsRoot: root })).rejects.toBeInstanceOf(RuntimeError);
    await expect(createCgroupManager({ name: '/abs' }, { fsRoot: root })).rejects.toThrow(/invalid cgroup name/);
  });

  it('remove retries while the cgroup is busy', async () => {
    const root = tree('v1');
    const fs = fakeCgroupFs(root, 1);
    const m = await createCgroupManager({ name: 'tsbuild/c4' }, { fsRoot: root, fs, selfCgroup: SELF_V1 });
    await m.create();
    const dir = m.paths().pids!;
    writeFileSync(join(dir, 'cgroup.procs'), '999999999\n'); // no such pid: kill gets ESRCH
    setTimeout(() => writeFileSync(join(dir, 'cgroup.procs'), ''), 50);
    await m.remove();
    expect(listDirs(root).filter((d) => d.includes('tsbuild'))).toEqual([]);
  });
});

describe('v2 manager on a fake tree', () => {
  it('uses a sibling of the own cgroup, enables controllers, converts v1 units', async () => {
    const root = tree('v2');
    const before = listDirs(root);
    const fs = fakeCgroupFs(root, 2);
    const m = await createCgroupManager({ name: 'tsbuild/c1' }, { fsRoot: root, fs, selfCgroup: '0::/user.slice/session\n' });
    expect(m.version).toBe(2);
    expect(m.paths()).toEqual({ unified: join(root, 'user.slice/tsbuild/c1') });
    await m.create();
    expect(read(join(root, 'user.slice/cgroup.subtree_control'))).toBe('cpuset cpu io memory pids');
    expect(read(join(root, 'user.slice/tsbuild/cgroup.subtree_control'))).toBe('cpuset cpu io memory pids');
    await m.apply({ memory: { limit: 64 << 20, swap: 96 << 20 }, cpu: { shares: 1024, quota: 50000, period: 100000 }, pids: { limit: 10 }, blockIO: { weight: 500 }, unified: { 'memory.high': '50000000' } });
    const d = m.paths().unified!;
    expect(read(join(d, 'memory.max'))).toBe(String(64 << 20));
    expect(read(join(d, 'memory.swap.max'))).toBe(String(32 << 20));
    expect(read(join(d, 'cpu.max'))).toBe('50000 100000');
    expect(read(join(d, 'cpu.weight'))).toBe(String(sharesToWeight(1024)));
    expect(read(join(d, 'pids.max'))).toBe('10');
    expect(read(join(d, 'io.weight'))).toBe(`default ${blkioToIoWeight(500)}`);
    expect(read(join(d, 'memory.high'))).toBe('50000000');
    await m.freeze('FROZEN');
    expect(read(join(d, 'cgroup.freeze'))).toBe('1');
    await m.freeze('THAWED');
    const s = await m.stats();
    expect(s.memory).toMatchObject({ usage: 1048576, maxUsage: 2097152, limit: 64 << 20, oomKills: 0 });
    expect(s.cpu).toMatchObject({ usageNanos: 5_000_000, quota: 50000, period: 100000 });
    expect(s.io).toEqual({ readBytes: 4096, writeBytes: 8192 });
    await m.kill(9);
    expect(fs.writes.some(([p]) => p.endsWith('c1/cgroup.kill'))).toBe(true);
    await m.remove();
    expect(listDirs(root)).toEqual(before);
  });

  it('unit conversions match runc', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(blkioToIoWeight(10)).toBe(1);
    expect(blkioToIoWeight(1000)).toBe(10000);
    expect(deviceRule({ allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' })).toBe('c 136:* rwm');
    expect(deviceRule({ allow: false })).toBe('a');
  });
});
