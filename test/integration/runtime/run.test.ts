import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { tarDirectory } from '../../../src/oci/tar/from-dir.js';
import { runImage, type RunOptions } from '../../../runtime/run.js';
import { formatErrorChain } from '../../../src/util/errors.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { REPO_ROOT } from '../../helpers/tools.js';

const PROBE = join(REPO_ROOT, 'native/build/test-init');
const HELPER = join(REPO_ROOT, 'native/build/tsbuild-helper');
const why = firstReason(
  needRoot(),
  needOverlay(),
  needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
  existsSync(PROBE) && existsSync(HELPER) ? undefined : 'native/build is not built (make -C native)',
);
if (why) console.warn(`skip: ${why}`);

let root: string;
const CGROUP_PARENT = `tsbuild-runtest-${process.pid}`;
let IMAGE = 'localhost/runtest/busybox:latest';

/** Imports a rootfs dir as a one-layer OCI image (uncompressed layer) into the store and tags it. */
async function importRootfs(store: ImageStore, dir: string, name: string, cfg: Record<string, unknown>): Promise<void> {
  const layer = await store.content.put(tarDirectory(dir), { mediaType: MediaTypes.OciLayer });
  const config = { architecture: 'amd64', os: 'linux', config: cfg, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
  const cdesc = await store.content.put(Buffer.from(JSON.stringify(config)), { mediaType: MediaTypes.OciConfig });
  const manifest = { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: cdesc, layers: [layer] };
  const mdesc: Descriptor = await store.content.put(Buffer.from(JSON.stringify(manifest)), { mediaType: MediaTypes.OciManifest });
  await store.tag(name, mdesc);
}

/** Runs with stdout/stderr captured into files; returns exit code and output. */
async function runCaptured(o: Partial<RunOptions>): Promise<{ exitCode: number; out: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-run-out-'));
  const outFd = openSync(join(dir, 'out'), 'w');
  const errFd = openSync(join(dir, 'err'), 'w');
  try {
    const r = await runImage({ root, image: IMAGE, cgroupParent: CGROUP_PARENT, binds: [{ source: PROBE, destination: '/probe', readonly: true }], ...o, io: { stdin: 'null', stdout: outFd, stderr: errFd } });
    return { exitCode: r.exitCode, out: readFileSync(join(dir, 'out'), 'utf8'), err: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

let baseline: string[] = [];
function leftovers(): string[] {
  return snapshot().filter((x) => !baseline.includes(x));
}
function snapshot(): string[] {
  const out: string[] = [];
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  if (mounts.includes(root)) out.push('mount');
  const containers = join(root, 'containers');
  if (existsSync(containers)) for (const d of readdirSync(containers)) if (d !== 'names' || readdirSync(join(containers, 'names')).length) out.push(`containers/${d}`);
  if (existsSync(join(root, 'run'))) for (const d of readdirSync(join(root, 'run'))) out.push(`run/${d}`);
  const own = /:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  for (const h of ['memory', 'pids', 'cpu', 'freezer']) {
    const base = join('/sys/fs/cgroup', h, h === 'memory' ? own : '/');
    if (existsSync(join(base, CGROUP_PARENT))) out.push(`cgroup ${h}/${CGROUP_PARENT}`);
  }
  return out;
}

describe.skipIf(!!why)('tsbuild run (library) with a busybox image', () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-run-'));
    const store = await ImageStore.open(root);
    const rootfs = await busyboxRootfs();
    await importRootfs(store, rootfs, IMAGE, { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_IMAGE=1'], Cmd: ['sh'], WorkingDir: '/' });
    await importRootfs(store, rootfs, 'localhost/runtest/nocmd:latest', {});
    baseline = snapshot();
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('passes the exit code through and leaves nothing behind', async () => {
    expect((await runCaptured({ cmd: ['true'] })).exitCode).toBe(0);
    expect((await runCaptured({ cmd: ['sh', '-c', 'exit 42'] })).exitCode).toBe(42);
    expect((await runCaptured({ cmd: ['/probe', 'exit', '7'] })).exitCode).toBe(7);
    expect(leftovers()).toEqual([]);
  });

  it('applies -e, -w, -u, --hostname and the image Env', async () => {
    // A non-root user without no_new_privs: the seccomp filter must go in before the user switch
    // (as runc does), since loading it afterwards needs CAP_SYS_ADMIN (regression: ECANCELED).
    const r = await runCaptured({ cmd: ['/probe', 'env', 'cwd', 'id', 'hostname', 'seccomp'], env: ['A=1', 'FROM_IMAGE=2'], workdir: '/tmp', user: '1000:1000', hostname: 'box' });
    expect(r.exitCode).toBe(0);
    expect(r.out).toContain('env A=1\n');
    expect(r.out).toContain('env FROM_IMAGE=2\n');
    expect(r.out).toContain('env PATH=/usr/sbin:/usr/bin:/sbin:/bin\n');
    expect(r.out).toContain('cwd /tmp\n');
    expect(r.out).toMatch(/uid 1000 .*gid 1000/);
    expect(r.out).toContain('hostname box\n');
    expect(r.out).toMatch(/^Seccomp:\s+2$/m);
    const etc = await runCaptured({ cmd: ['sh', '-c', 'cat /etc/hostname; grep -c localhost /etc/hosts; cat /etc/resolv.conf'], hostname: 'box' });
    expect(etc.out).toBe(`box\n2\n${existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : ''}`);
    const hostNet = await runCaptured({ cmd: ['cat', '/etc/hosts'], network: 'host' });
    expect(hostNet.out).toBe(readFileSync('/etc/hosts', 'utf8'));
  });

  it('resolves a user name from the image /etc/passwd and rejects an unknown one', async () => {
    const r = await runCaptured({ cmd: ['id', '-u'], user: 'nobody' });
    expect(r.exitCode).toBe(0);
    expect(r.out.trim()).toBe(readFileSync(join(await busyboxRootfs(), 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':')[2]);
    await expect(runCaptured({ cmd: ['true'], user: 'ghost' })).rejects.toThrow('unable to find user ghost');
    expect(leftovers()).toEqual([]);
  });

  it('OOM kill under --memory ends with 137', async () => {
    const r = await runCaptured({ cmd: ['/probe', 'alloc', '200'], resources: { memory: 32 << 20, memorySwap: 32 << 20 } });
    expect(r.exitCode).toBe(137);
    expect(leftovers()).toEqual([]);
  });

  it('--pids-limit contains a fork bomb', async () => {
    const r = await runCaptured({ cmd: ['/probe', 'fork-bomb', '200'], resources: { pidsLimit: 20 } });
    const m = /forked (\d+) (\w+)/.exec(r.out);
    expect(m, r.out + r.err).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(20);
    expect(m![2]).toBe('EAGAIN');
    const sh = await runCaptured({ cmd: ['sh', '-c', 'n=0; while [ $n -lt 200 ]; do sleep 30 & n=$((n+1)); done'], resources: { pidsLimit: 20 } });
    expect(sh.err).toMatch(/can't fork/);
    expect(leftovers()).toEqual([]);
  });

  it('--cpus sets the CFS quota of the cgroup the container runs in', async () => {
    // The probe prints /proc/self/cgroup; while it sleeps, the host side reads that cgroup's quota.
    const run = runCaptured({ cmd: ['sh', '-c', '/probe cgroup; sleep 2'], resources: { cpus: 0.5 } });
    let quota: string | undefined;
    const deadline = Date.now() + 15_000;
    // the directory exists a moment before the limits are written: poll until they are
    while (quota !== '50000' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      const dir = join('/sys/fs/cgroup/cpu', CGROUP_PARENT);
      const ids = existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()) : [];
      if (ids.length) quota = readFileSync(join(dir, ids[0]!.name, 'cpu.cfs_quota_us'), 'utf8').trim();
    }
    const r = await run;
    expect(r.exitCode).toBe(0);
    expect(quota).toBe('50000');
    const cpuLine = r.out.split('\n').find((l) => /^\d+:cpu(,cpuacct)?:/.test(l));
    expect(cpuLine, r.out).toMatch(new RegExp(`${CGROUP_PARENT}/[0-9a-f]{64}$`));
  });

  it('default seccomp profile: keyctl, add_key, bpf, mount, unshare(CLONE_NEWUSER), kexec_load fail with EPERM', async () => {
    const calls = ['keyctl', 'add_key', 'bpf', 'mount', 'unshare-user', 'kexec_load', 'getpid'];
    const r = await runCaptured({ cmd: ['/probe', ...calls.flatMap((c) => ['syscall', c]), 'seccomp'] });
    expect(r.exitCode).toBe(0);
    for (const c of calls.slice(0, -1)) expect(r.out).toContain(`${c} EPERM\n`);
    expect(r.out).toContain('getpid OK\n');
    expect(r.out).toMatch(/Seccomp:\s+2/);
    const busy = await runCaptured({ cmd: ['sh', '-c', 'echo hi | sed s/h/H/ && ls / >/dev/null && mkdir /tmp/x && date >/dev/null && ps >/dev/null'] });
    expect(busy).toMatchObject({ exitCode: 0, out: 'Hi\n' });
    const free = await runCaptured({ cmd: ['/probe', 'syscall', 'keyctl', 'seccomp'], seccomp: 'unconfined' });
    expect(free.out).not.toContain('keyctl EPERM');
    expect(free.out).toMatch(/Seccomp:\s+0/);
  });

  it('--read-only, -v ro and --tmpfs', async () => {
    const host = mkdtempSync(join(tmpdir(), 'tsbuild-bind-'));
    try {
      writeFileSync(join(host, 'f'), 'from host');
      const r = await runCaptured({ cmd: ['sh', '-c', 'cat /data/f; touch /data/g || echo ro-bind; touch /x || echo ro-root; touch /run/y && echo tmpfs-ok'], readOnly: true, binds: [{ source: PROBE, destination: '/probe', readonly: true }, { source: host, destination: '/data', readonly: true }], tmpfs: [{ destination: '/run' }] });
      expect(r.out).toBe('from hostro-bind\nro-root\ntmpfs-ok\n');
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  it('a seccomp profile file, --cap-drop, --privileged (capabilities outside the host bounding set dropped with a warning), --init reaps zombies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-seccomp-'));
    try {
      writeFileSync(join(dir, 'p.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
      const sc = await runCaptured({ cmd: ['sh', '-c', 'mkdir /tmp/x || echo denied; echo ok > /tmp/y && cat /tmp/y'], seccomp: { file: join(dir, 'p.json') } });
      expect(sc.out).toBe('denied\nok\n');
      expect(sc.err).toMatch(/Permission denied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const chown = await runCaptured({ cmd: ['sh', '-c', 'touch /tmp/f && chown 1 /tmp/f && echo chowned'] });
    expect(chown.out).toBe('chowned\n');
    const dropped = await runCaptured({ cmd: ['sh', '-c', 'touch /tmp/f && chown 1 /tmp/f || echo refused'], capDrop: ['CHOWN'] });
    expect(dropped.out).toBe('refused\n');
    const warnings: string[] = [];
    const priv = await runCaptured({ cmd: ['/probe', 'syscall', 'mount', 'seccomp'], privileged: true, logger: { debug() {}, info() {}, warn: (w) => warnings.push(w) } });
    expect(priv.out).toContain('mount OK\n');
    expect(priv.out).toMatch(/Seccomp:\s+0/);
    const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
    if (BigInt(`0x${bnd}`) !== (1n << 41n) - 1n) expect(warnings.join('\n')).toMatch(/capabilities not in the host bounding set were dropped/);
    const noInit = await runCaptured({ cmd: ['/probe', 'zombies'] });
    expect(noInit.out).toBe('zombies 1\n');
    const init = await runCaptured({ cmd: ['/probe', 'zombies'], init: true });
    expect(init.out).toBe('zombies 0\n');
    expect(leftovers()).toEqual([]);
  });

  it('--name is unique among running containers and free again afterwards', async () => {
    const first = runCaptured({ cmd: ['sleep', '2'], name: 'dup' });
    const nameFile = join(root, 'containers', 'names', 'dup');
    for (let i = 0; i < 500 && !existsSync(nameFile); i++) await new Promise((r) => setTimeout(r, 20));
    await expect(runCaptured({ cmd: ['true'], name: 'dup' })).rejects.toThrow(/the container name dup is already in use by container [0-9a-f]{12}/);
    expect((await first).exitCode).toBe(0);
    expect((await runCaptured({ cmd: ['true'], name: 'dup' })).exitCode).toBe(0);
    await expect(runCaptured({ cmd: ['true'], name: '../x' })).rejects.toThrow(/invalid container name/);
    expect(leftovers()).toEqual([]);
  });

  it('an abort signal stops setup, or kills a running container, and leaves nothing behind', async () => {
    const early = new AbortController();
    early.abort();
    await expect(runCaptured({ cmd: ['true'], signal: early.signal })).rejects.toThrow(/abort/i);
    const late = new AbortController();
    const t0 = Date.now();
    const running = runCaptured({ cmd: ['sleep', '30'], signal: late.signal });
    // abort once the container process runs: in its pids cgroup AND executed (a created container
    // is in the cgroup too; an abort before start rejects instead of killing)
    const pidsDir = join('/sys/fs/cgroup/pids', CGROUP_PARENT);
    const comm = (pid: string) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return ''; } };
    const isRunning = () => existsSync(pidsDir) && readdirSync(pidsDir, { withFileTypes: true }).some((d) => d.isDirectory() && readFileSync(join(pidsDir, d.name, 'cgroup.procs'), 'utf8').trim().split('\n').some((p) => p && comm(p) === 'sleep'));
    for (let i = 0; i < 300 && !isRunning(); i++) await new Promise((r) => setTimeout(r, 50));
    late.abort();
    expect((await running).exitCode).toBe(137);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(leftovers()).toEqual([]);
  });

  it('bad input fails naming the object and leaves nothing behind', async () => {
    await expect(runCaptured({ image: 'localhost/runtest/missing:1' })).rejects.toThrow(/unable to find image localhost\/runtest\/missing:1/);
    await expect(runCaptured({ image: 'localhost/runtest/nocmd:latest' })).rejects.toThrow(/no command specified/);
    await expect(runCaptured({ cmd: ['true'], binds: [{ source: '/nonexistent/src', destination: '/x' }] })).rejects.toThrow('bind mount source path /nonexistent/src does not exist');
    await expect(runCaptured({ cmd: ['true'], resources: { cpus: 0.001 } })).rejects.toThrow(/cpus 0.001 is out of range/);
    await expect(runCaptured({ cmd: ['/does/not/exist'] })).rejects.toThrow(/does\/not\/exist/);
    // a value only the kernel can judge: CPU 63 does not exist on the test machines
    const refused = await runCaptured({ cmd: ['true'], resources: { cpusetCpus: '63' } }).then(() => undefined, (e: unknown) => e);
    expect(formatErrorChain(refused)).toMatch(/^applying resource limits to container [0-9a-f]{12}: setting cpuset.cpus of cgroup \S+ to 63: E[A-Z]+/);
    expect(leftovers()).toEqual([]);
  });
});
