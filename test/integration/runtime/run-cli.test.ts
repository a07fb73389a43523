import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSize, parseTmpfs, parseVolume, resolveEnv, runOptionsFromFlags } from '../../../src/cli/commands/run.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { spawn } from 'node:child_process';
import { REPO_ROOT, runTsbuild, TSBUILD_MAIN, tsbuildOk } from '../../helpers/tools.js';
import { reapStaleContainers } from '../../../runtime/run.js';

describe('tsbuild run flag parsing', () => {
  it('sizes, volumes, tmpfs and env', () => {
    expect(parseSize('64m', '--memory')).toBe(64 << 20);
    expect(parseSize('1g', '--memory')).toBe(1 << 30);
    expect(parseSize('512k', '--memory')).toBe(512 << 10);
    expect(parseSize('1048576', '--memory')).toBe(1 << 20);
    expect(parseSize('-1', '--memory-swap')).toBe(-1);
    expect(() => parseSize('lots', '--memory')).toThrow('invalid size "lots" for --memory');
    expect(parseVolume('/h:/c')).toEqual({ source: '/h', destination: '/c', readonly: false });
    expect(parseVolume('/h:/c:ro')).toEqual({ source: '/h', destination: '/c', readonly: true });
    expect(() => parseVolume('named:/c')).toThrow(/named volumes are not supported/);
    expect(() => parseVolume('/h:/c:zz')).toThrow(/invalid volume mode "zz"/);
    expect(parseTmpfs('/run:size=1m,mode=1777')).toEqual({ destination: '/run', options: ['size=1m', 'mode=1777'] });
    expect(resolveEnv(['A=1', 'HOSTVAR', 'UNSET_VAR'], { HOSTVAR: 'h' })).toEqual(['A=1', 'HOSTVAR=h']);
    expect(() => resolveEnv(['=x'])).toThrow(/invalid environment variable/);
  });
  it('maps flags to run options and refuses what is not supported', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-envfile-'));
    try {
      writeFileSync(join(dir, 'env'), '# comment\n\nFROM_FILE=1\nB=file\n');
      const o = runOptionsFromFlags('/r', 'img', ['ls'], { network: 'host', env: ['B=flag'], envFile: [join(dir, 'env')], entrypoint: '', memory: '64m', memorySwap: '-1', cpus: '1.5', cpuShares: '512', cpusetCpus: '0', pidsLimit: '10', securityOpt: ['seccomp=unconfined', 'no-new-privileges'], capAdd: ['NET_ADMIN'], user: '1:2' });
      expect(o).toMatchObject({ root: '/r', image: 'img', cmd: ['ls'], entrypoint: [], env: ['FROM_FILE=1', 'B=file', 'B=flag'], network: 'host', seccomp: 'unconfined', noNewPrivileges: true, user: '1:2', capAdd: ['NET_ADMIN'], resources: { memory: 64 << 20, memorySwap: -1, cpus: 1.5, cpuShares: 512, cpusetCpus: '0', pidsLimit: 10 } });
      expect(runOptionsFromFlags('/r', 'img', [], { network: 'none', securityOpt: ['seccomp=/p.json'] }).seccomp).toEqual({ file: '/p.json' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => runOptionsFromFlags('/r', 'i', [], { network: 'bridge' })).toThrow(/network mode "bridge" is not supported/);
    expect(() => runOptionsFromFlags('/r', 'i', [], { network: 'none', securityOpt: ['apparmor=x'] })).toThrow(/security option "apparmor=x" is not supported/);
    expect(() => runOptionsFromFlags('/r', 'i', [], { network: 'none', cpus: 'x' })).toThrow(/invalid value "x" for --cpus/);
    expect(() => runOptionsFromFlags('/r', 'i', [], { network: 'none', envFile: ['/nonexistent/env'] })).toThrow('reading env file /nonexistent/env');
  });
});

const PROBE = join(REPO_ROOT, 'native/build/test-init');
const why = firstReason(
  needRoot(),
  needOverlay(),
  needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
  existsSync(TSBUILD_MAIN) ? undefined : 'the CLI is not built (npm run build)',
  existsSync(PROBE) ? undefined : 'native/build is not built (make -C native)',
);
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('tsbuild run (CLI)', () => {
  let root = '';
  const parent = `tsbuild-runcli-${process.pid}`;
  const args = (...a: string[]) => ['run', '--rm', '--cgroup-parent', parent, ...a];
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-runcli-'));
    await tsbuildOk(['import', await busyboxRootfs(), 'localhost/runcli/busybox:latest', '-c', 'CMD ["sh"]'], { root });
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  const leftovers = () => {
    const out: string[] = [];
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(root)) out.push('mount');
    for (const d of ['containers', 'run']) if (existsSync(join(root, d))) for (const e of readdirSync(join(root, d))) if (e !== 'names' || readdirSync(join(root, d, e)).length) out.push(`${d}/${e}`);
    for (const h of ['pids', 'cpu', 'freezer']) if (existsSync(join('/sys/fs/cgroup', h, parent))) out.push(`cgroup ${h}`);
    return out;
  };

  it('streams output, passes exit codes through, and --rm leaves nothing', async () => {
    const ok = await runTsbuild(args('localhost/runcli/busybox', 'sh', '-c', 'echo out; echo err >&2; exit 5'), { root });
    expect(ok).toMatchObject({ code: 5, stdout: 'out\n', stderr: 'err\n' });
    const probe = await runTsbuild(args('-e', 'X=1', '-w', '/tmp', '-u', '1000:1000', '--security-opt', 'no-new-privileges', '-v', `${PROBE}:/probe:ro`, 'localhost/runcli/busybox', '/probe', 'env', 'cwd', 'id'), { root });
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.stdout).toContain('env X=1\n');
    expect(probe.stdout).toContain('cwd /tmp\n');
    expect(probe.stdout).toMatch(/uid 1000 .*gid 1000/);
    expect(leftovers()).toEqual([]);
  });

  it('-i passes stdin', async () => {
    const r = await runTsbuild(args('-i', 'localhost/runcli/busybox', 'sh', '-c', 'tr a-z A-Z'), { root, input: 'piped\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'PIPED\n' });
  });

  it('exits 125 on setup errors, 127 for a missing command, 2 for bad flags, naming the object', async () => {
    const missing = await runTsbuild(args('localhost/runcli/nope'), { root });
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('unable to find image localhost/runcli/nope');
    const cmd = await runTsbuild(args('localhost/runcli/busybox', '/no/such/cmd'), { root });
    expect(cmd.code).toBe(127);
    expect(cmd.stderr).toContain('/no/such/cmd');
    const bind = await runTsbuild(args('-v', '/nonexistent/dir:/x', 'localhost/runcli/busybox', 'true'), { root });
    expect(bind).toMatchObject({ code: 125 });
    expect(bind.stderr).toContain('bind mount source path /nonexistent/dir does not exist');
    const user = await runTsbuild(args('-u', 'ghost', 'localhost/runcli/busybox', 'true'), { root });
    expect(user.code).toBe(125);
    expect(user.stderr).toContain('unable to find user ghost');
    const mem = await runTsbuild(args('-m', 'lots', 'localhost/runcli/busybox', 'true'), { root });
    expect(mem.code).toBe(2);
    const cpuset = await runTsbuild(args('--cpuset-cpus', '63', 'localhost/runcli/busybox', 'true'), { root });
    expect(cpuset.code).toBe(125);
    expect(cpuset.stderr).toMatch(/setting cpuset.cpus of cgroup .* to 63/);
    // -t is supported (the monitor relays a pty): the process sees a terminal even when tsbuild's stdio are pipes
    const tty = await runTsbuild(args('-t', 'localhost/runcli/busybox', 'sh', '-c', 'test -t 1 && echo tty'), { root });
    expect(tty).toMatchObject({ code: 0 });
    expect(tty.stdout).toContain('tty');
    expect(leftovers()).toEqual([]);
  });

  it('a run killed with SIGKILL is cleaned up by reapStaleContainers (which every run calls first)', async () => {
    const child = spawn(process.execPath, [TSBUILD_MAIN, '--root', root, ...args('localhost/runcli/busybox', 'sleep', '60')], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const cdir = join(root, 'containers');
    let id: string | undefined;
    for (let i = 0; i < 200 && !id; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const ids = existsSync(cdir) ? readdirSync(cdir).filter((d) => /^[0-9a-f]{64}$/.test(d)) : [];
      if (ids.length && existsSync(join(cdir, ids[0]!, 'owner.json')) && readFileSync('/proc/self/mountinfo', 'utf8').includes(join(cdir, ids[0]!))) {
        // wait until the container process is in its cgroup
        const procs = join('/sys/fs/cgroup/pids', parent, ids[0]!, 'cgroup.procs');
        if (existsSync(procs) && readFileSync(procs, 'utf8').trim()) id = ids[0];
      }
    }
    expect(id, 'the container started').toBeDefined();
    child.kill('SIGKILL');
    await exited;
    expect(leftovers().length).toBeGreaterThan(0);
    expect(await reapStaleContainers(root)).toEqual([id]);
    expect(leftovers()).toEqual([]);
  });
});
