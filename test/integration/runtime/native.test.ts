import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuntimeError } from '../../../runtime/errors.js';
import { createCgroupManager } from '../../../runtime/cgroups/manager.js';
import { createContainer, execInContainer, listContainers, loadContainer, runContainer } from '../../../runtime/container/index.js';
import { TEST_SECCOMP, makeBundle, nativeSkipReason, testSpec, type TestBundle } from '../../runtime/helper/bundle.js';

const why = nativeSkipReason();
if (why) console.warn(`skip: ${why}`);

let bundle: TestBundle;
let stateRoot: string;
let n = 0;

function collect(r: Readable | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (!r) return resolve('');
    let s = '';
    r.setEncoding('utf8');
    r.on('data', (d: string) => (s += d));
    r.on('end', () => resolve(s));
  });
}

/** Creates, starts, waits and deletes a container; returns its stdout and exit. */
async function probe(spec: Record<string, unknown>, opts: { init?: boolean; cgroup?: boolean; during?: (id: string) => Promise<void> } = {}) {
  bundle.writeSpec(spec);
  const id = `t${process.pid}-${++n}`;
  const cgroup = opts.cgroup ? await createCgroupManager({ name: `tsbuild-test-${id}` }) : undefined;
  const c = await createContainer({
    id, bundle: bundle.dir, stateRoot, io: { stdin: 'null', stdout: 'pipe', stderr: 'pipe' }, ...(opts.init ? { init: true } : {}), ...(cgroup ? { cgroup } : {}),
  });
  const out = collect(c.stdio?.stdout);
  const err = collect(c.stdio?.stderr);
  try {
    await c.start();
    if (opts.during) await opts.during(id);
    const exit = await c.wait();
    return { stdout: await out, stderr: await err, ...exit };
  } finally {
    await c.delete({ force: true });
  }
}

function withProcess(spec: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  return { ...spec, process: { ...(spec.process as object), ...patch } };
}

function hostMountsMention(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
}

describe.skipIf(!!why)('native helper: real containers from a busybox bundle', () => {
  beforeAll(() => {
    bundle = makeBundle();
    stateRoot = mkdtempSync(join(tmpdir(), 'tsbuild-state-'));
  });
  afterAll(() => {
    bundle?.remove();
    if (stateRoot) rmSync(stateRoot, { recursive: true, force: true });
  });

  it('runs the probe as pid 1 with the spec hostname, caps, fds, cwd and mount table', async () => {
    const r = await probe(testSpec(['/bin/test-init', 'pid', 'hostname', 'id', 'caps', 'seccomp', 'fds', 'cwd', 'mounts']));
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('pid 1 ppid 0');
    expect(lines).toContain('hostname tsbuild-test');
    expect(lines).toContain('uid 0 gid 0 groups');
    // CAP_KILL(5) | CAP_NET_BIND_SERVICE(10) | CAP_AUDIT_WRITE(29)
    expect(lines).toContain('CapEff:\t0000000020000420');
    expect(lines).toContain('CapBnd:\t0000000020000420');
    expect(lines).toContain('NoNewPrivs:\t1');
    expect(lines).toContain('Seccomp:\t0');
    expect(lines).toContain('fds 0 1 2');
    expect(lines).toContain('cwd /');
    for (const m of ['/proc proc rw', '/dev tmpfs rw', '/dev/pts devpts rw', '/dev/shm tmpfs rw', '/dev/mqueue mqueue rw', '/sys sysfs ro', '/proc/sys proc ro']) {
      expect(lines).toContain(m);
    }
    expect(lines.find((l) => l.startsWith('/ '))).toMatch(/ ro$/);
    expect(lines.filter((l) => l.startsWith('/sys/fs/cgroup/')).every((l) => l.endsWith(' ro'))).toBe(true);
    expect(hostMountsMention(bundle.dir)).toEqual([]);
  });

  it('masks paths: files read as empty, directories are read-only tmpfs', async () => {
    const maskedFiles = ['/proc/kcore', '/proc/keys', '/proc/timer_list'].filter((p) => existsSync(p));
    const args = ['/bin/test-init', 'mounts', ...maskedFiles.flatMap((p) => ['read', p])];
    const r = await probe(testSpec(args));
    for (const p of maskedFiles) expect(r.stdout).toContain(`read ${p} OK 0\n`);
    if (existsSync('/sys/firmware')) expect(r.stdout).toContain('/sys/firmware tmpfs ro\n');
  });

  it('applies a seccomp profile (Seccomp: 2, keyctl -> EPERM)', async () => {
    const spec = testSpec(['/bin/test-init', 'seccomp', 'syscall', 'keyctl', 'syscall', 'add_key', 'syscall', 'getpid']);
    (spec.linux as Record<string, unknown>).seccomp = TEST_SECCOMP;
    const r = await probe(spec);
    expect(r.stdout).toContain('Seccomp:\t2\n');
    expect(r.stdout).toContain('keyctl EPERM\n');
    expect(r.stdout).toContain('add_key EPERM\n');
    expect(r.stdout).toContain('getpid OK\n');
  });

  it('switches user and groups, keeps cwd and passes the exit status', async () => {
    const spec = withProcess(testSpec(['/bin/test-init', 'id', 'cwd', 'caps', 'exit', '3']), { user: { uid: 65534, gid: 65534, additionalGids: [5] }, cwd: '/tmp' });
    const r = await probe(spec);
    expect(r.stdout).toContain('uid 65534 gid 65534 groups 5\n');
    expect(r.stdout).toContain('cwd /tmp\n');
    // non-root: ambient caps need inheritable ones, which runc's default spec does not give
    expect(r.stdout).toContain('CapEff:\t0000000000000000\n');
    expect(r.exitCode).toBe(3);
  });

  it('kill: SIGKILL ends the container with 137', async () => {
    const r = await probe(testSpec(['/bin/test-init', 'sleep', '30']), {
      during: async (id) => (await loadContainer(stateRoot, id)).kill('SIGKILL'),
    });
    expect(r.exitCode).toBe(137);
    expect(r.signal).toBe('SIGKILL');
  });

  it('--init: pid 1 reaps orphans and forwards SIGTERM (143)', async () => {
    const plain = await probe(testSpec(['/bin/test-init', 'pid', 'zombies']));
    expect(plain.stdout).toContain('pid 1 ppid 0\n');
    expect(plain.stdout).toContain('zombies 1\n');
    const reaped = await probe(testSpec(['/bin/test-init', 'pid', 'zombies', 'fds']), { init: true });
    expect(reaped.stdout).toContain('pid 2 ppid 1\n');
    expect(reaped.stdout).toContain('zombies 0\n');
    expect(reaped.stdout).toContain('fds 0 1 2\n');
    const term = await probe(testSpec(['/bin/test-init', 'sleep', '30']), { init: true, during: async (id) => (await loadContainer(stateRoot, id)).kill('SIGTERM') });
    expect(term.exitCode).toBe(143);
  });

  it('binds a host directory read-only (rbind,ro)', async () => {
    const spec = testSpec(['/bin/test-init', 'mounts']);
    (spec.mounts as unknown[]).push({ destination: '/data', type: 'bind', source: join(bundle.dir, 'rootfs/etc'), options: ['rbind', 'ro'] });
    const r = await probe(spec);
    expect(r.stdout).toMatch(/^\/data \S+ ro$/m);
  });

  it('lifecycle: created -> running -> stopped, visible to another process through state.json', async () => {
    bundle.writeSpec(testSpec(['/bin/test-init', 'sleep', '30']));
    const id = `life-${process.pid}`;
    const pidFile = join(stateRoot, 'pidfile');
    const c = await createContainer({ id, bundle: bundle.dir, stateRoot, io: { stdin: 'null', stdout: 'null', stderr: 'null' }, pidFile });
    try {
      const created = await c.state();
      expect(created.status).toBe('created');
      expect(created.pid).toBe(Number(readFileSync(pidFile, 'utf8')));
      expect(created.bundle).toBe(bundle.dir);
      await expect(c.delete()).rejects.toMatchObject({ code: 'INVALID_STATE' });
      const other = await loadContainer(stateRoot, id);
      await other.start();
      expect((await other.state()).status).toBe('running');
      expect((await listContainers(stateRoot)).map((s) => [s.id, s.status])).toContainEqual([id, 'running']);
      await other.kill('SIGKILL');
      expect(await other.wait()).toMatchObject({ exitCode: 137 });
      expect((await other.state()).status).toBe('stopped');
      // the recorded pid stays in a stopped state (crun does; hooks get it), runc reports 0
      expect((await other.state()).pid).toBe(created.pid);
      await other.delete();
      await expect(loadContainer(stateRoot, id)).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    } finally {
      await c.delete({ force: true }).catch(() => {});
    }
  });

  it('the container process runs from a sealed memfd copy of the helper until exec (CVE-2019-5736)', async () => {
    bundle.writeSpec(testSpec(['/bin/test-init', 'exit', '0']));
    const id = `memfd-${process.pid}`;
    const c = await createContainer({ id, bundle: bundle.dir, stateRoot, io: { stdin: 'null', stdout: 'null', stderr: 'null' } });
    try {
      const { pid } = await c.state();
      expect(readlinkSync(`/proc/${pid}/exe`)).toMatch(/^\/memfd:tsbuild-helper/);
      await c.start();
      expect((await c.wait()).exitCode).toBe(0);
    } finally {
      await c.delete({ force: true });
    }
  });

  it('exec joins a running container (namespaces, hostname, pid namespace, exit status)', async () => {
    const spec = testSpec(['/bin/test-init', 'sleep', '30'], 'exec-target');
    (spec.root as Record<string, unknown>).readonly = false;
    bundle.writeSpec(spec);
    const id = `exec-${process.pid}`;
    const c = await createContainer({ id, bundle: bundle.dir, stateRoot, io: { stdin: 'null', stdout: 'null', stderr: 'null' } });
    try {
      await c.start();
      const out = join(bundle.dir, 'rootfs/tmp/exec-out');
      const r = await execInContainer(stateRoot, id, { args: ['/bin/sh', '-c', '/bin/test-init hostname pid caps fds > /tmp/exec-out; exit 5'] });
      expect(r.exitCode).toBe(5);
      const text = readFileSync(out, 'utf8');
      expect(text).toContain('hostname exec-target\n');
      // in the container's pid namespace (small pid), not its pid 1
      expect(Number(/^pid (\d+) ppid \d+$/m.exec(text)?.[1])).toBeGreaterThan(1);
      expect(Number(/^pid (\d+) ppid \d+$/m.exec(text)?.[1])).toBeLessThan(100);
      expect(text).toContain('CapEff:\t0000000020000420\n');
      expect(text).toContain('fds 0 1 2\n');
      rmSync(out);
    } finally {
      await c.delete({ force: true });
    }
  });

  it('user namespace: the parent writes the maps on request; root inside is an unprivileged uid outside', async () => {
    const spec = testSpec(['/bin/test-init', 'id', 'caps', 'sleep', '0']);
    const linux = spec.linux as Record<string, unknown>;
    linux.namespaces = [...(linux.namespaces as unknown[]), { type: 'user' }];
    linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    (spec.mounts as { destination: string }[]).splice(0, spec.mounts ? (spec.mounts as unknown[]).length : 0,
      ...(testSpec([]).mounts as { destination: string }[]).filter((m) => !['/sys', '/sys/fs/cgroup'].includes(m.destination)));
    (spec.root as Record<string, unknown>).readonly = false;
    const r = await probe(spec);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('uid 0 gid 0 groups\n');
    expect(r.stdout).toContain('CapEff:\t0000000020000420\n');
  });

  it('joins the cgroup given by a CgroupManager: pids.max stops a fork bomb, memory.limit OOM-kills (137), pause/resume freeze, kill --all', async () => {
    const spec = testSpec(['/bin/test-init', 'cgroup', 'fork-bomb', '40']);
    (spec.linux as Record<string, unknown>).resources = { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 10 } };
    const r = await probe(spec, { cgroup: true });
    expect(r.stdout).toMatch(/^forked \d+ EAGAIN$/m);
    expect(Number(/^forked (\d+)/m.exec(r.stdout)![1])).toBeLessThan(10);
    expect(r.stdout).toMatch(/^\d+:pids:\/$/m); // rooted at the container's cgroup (cgroup namespace)

    const oom = testSpec(['/bin/test-init', 'alloc', '8', 'alloc', '128']);
    (oom.linux as Record<string, unknown>).resources = { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
    const killed = await probe(oom, { cgroup: true });
    expect(killed.stdout).toContain('allocated 8\n');
    expect(killed.stdout).not.toContain('allocated 128');
    expect(killed.exitCode).toBe(137);

    bundle.writeSpec(testSpec(['/bin/sh', '-c', '/bin/test-init sleep 30 & /bin/test-init sleep 30; exit 0']));
    const id = `pause-${process.pid}`;
    const cgroup = await createCgroupManager({ name: `tsbuild-test-${id}` });
    const c = await createContainer({ id, bundle: bundle.dir, stateRoot, cgroup, io: { stdin: 'null', stdout: 'null', stderr: 'null' } });
    try {
      await c.start();
      await c.pause();
      expect((await c.state()).status).toBe('paused');
      await c.resume();
      expect((await c.state()).status).toBe('running');
      await c.kill('SIGKILL', { all: true });
      expect((await c.wait()).exitCode).toBe(137);
      expect(await cgroup.pids()).toEqual([]);
      const plain = await createContainer({ id: `nocg-${process.pid}`, bundle: bundle.dir, stateRoot, io: { stdin: 'null', stdout: 'null', stderr: 'null' } });
      await expect(plain.pause()).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
      await plain.delete({ force: true });
    } finally {
      await c.delete({ force: true });
    }
    expect(existsSync(cgroup.paths().pids ?? '/nonexistent')).toBe(false);
  });

  it('process.terminal: a pty from the container devpts, relayed to the caller', async () => {
    const r = await probe(withProcess(testSpec(['/bin/test-init', 'tty', 'fds']), { terminal: true }));
    expect(r.stdout).toContain('tty /dev/pts/0 out-tty\r\n');
    expect(r.stdout).toContain('fds 0 1 2\r\n');

    bundle.writeSpec(withProcess(testSpec(['/bin/sh']), { terminal: true }));
    const id = `tty-${process.pid}`;
    const c = await createContainer({ id, bundle: bundle.dir, stateRoot, io: { stdin: 'pipe', stdout: 'pipe', stderr: 'null' } });
    try {
      const out = collect(c.stdio?.stdout);
      await c.start();
      c.stdio?.stdin?.end('echo hi-$((40+2))\nexit 4\n');
      expect((await c.wait()).exitCode).toBe(4);
      expect(await out).toContain('hi-42\r\n');
    } finally {
      await c.delete({ force: true });
    }
  });

  describe('bad input gives a RuntimeError naming the step and leaves nothing behind', () => {
    async function failing(spec: unknown): Promise<RuntimeError> {
      const before = readdirSync(stateRoot).length;
      if (typeof spec === 'string') writeFileSync(join(bundle.dir, 'config.json'), spec);
      else bundle.writeSpec(spec);
      const e = await runContainer({ id: `bad-${process.pid}-${++n}`, bundle: bundle.dir, stateRoot, io: { stdin: 'null', stdout: 'null', stderr: 'null' } }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(RuntimeError);
      expect(readdirSync(stateRoot).length).toBe(before);
      expect(hostMountsMention(bundle.dir)).toEqual([]);
      return e as RuntimeError;
    }

    it('missing command: step exec, ENOENT', async () => {
      const e = await failing(testSpec(['/bin/no-such-command']));
      expect(e).toMatchObject({ code: 'EXEC_FAILED', step: 'exec', errno: 'ENOENT' });
      const viaPath = await failing(testSpec(['no-such-command']));
      expect(viaPath).toMatchObject({ step: 'exec', errno: 'ENOENT' });
    });

    it('bad config.json: step config', async () => {
      const e = await failing('{ this is not json');
      expect(e).toMatchObject({ code: 'INVALID_SPEC', step: 'config' });
    });

    it('missing bind source: step mount, ENOENT', async () => {
      const spec = testSpec(['/bin/test-init', 'id']);
      (spec.mounts as unknown[]).push({ destination: '/data', type: 'bind', source: '/nonexistent/source', options: ['rbind'] });
      const e = await failing(spec);
      expect(e).toMatchObject({ code: 'SETUP_FAILED', step: 'mount', errno: 'ENOENT' });
      expect(e.message).toContain('/nonexistent/source');
    });

    it('unknown capability: step capabilities', async () => {
      const spec = withProcess(testSpec(['/bin/test-init', 'id']), { capabilities: { bounding: ['CAP_NOT_A_CAP'] } });
      const e = await failing(spec);
      expect(e).toMatchObject({ code: 'SETUP_FAILED', step: 'capabilities', errno: 'EINVAL' });
    });
  });
});
