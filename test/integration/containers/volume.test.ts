import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { REPO_ROOT, runTsbuild, TSBUILD_MAIN, tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(
  needRoot(),
  needOverlay(),
  needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
  existsSync(TSBUILD_MAIN) ? undefined : 'the CLI is not built (npm run build)',
  existsSync(join(REPO_ROOT, 'native/build/tsbuild-helper')) ? undefined : 'native/build is not built (make -C native)',
);
if (why) console.warn(`skip: ${why}`);

const IMG = 'localhost/vol/busybox:latest';

describe.skipIf(!!why)('containers: named and anonymous volumes, --mount, copy-up', () => {
  let root = '';
  let work = '';
  /** A host directory the image's /escape symlink points at: must stay empty. */
  let hostTarget = '';
  const parent = `tsbuild-vol-${process.pid}`;
  const ts = (...a: string[]) => runTsbuild(a, { root });
  const ok = async (...a: string[]) => (await tsbuildOk(a, { root })).stdout;
  const run = (...a: string[]) => runTsbuild(['run', '--cgroup-parent', parent, ...a], { root });
  const runOk = async (...a: string[]) => (await tsbuildOk(['run', '--cgroup-parent', parent, ...a], { root })).stdout;
  const volumes = async () => (await ok('volume', 'ls', '-q')).split('\n').filter(Boolean).sort();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-vol-'));
    work = mkdtempSync(join(tmpdir(), 'tsbuild-vol-work-'));
    hostTarget = mkdtempSync(join(tmpdir(), 'tsbuild-vol-host-'));
    const rootfs = join(work, 'rootfs');
    cpSync(await busyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
    // image content for copy-up: owners and modes must survive
    mkdirSync(join(rootfs, 'srv', 'data', 'sub'), { recursive: true });
    writeFileSync(join(rootfs, 'srv', 'data', 'seed'), 'from the image\n');
    chownSync(join(rootfs, 'srv', 'data', 'seed'), 1234, 4321);
    chmodSync(join(rootfs, 'srv', 'data', 'seed'), 0o640);
    symlinkSync('seed', join(rootfs, 'srv', 'data', 'link'));
    chownSync(join(rootfs, 'srv', 'data'), 1000, 1000);
    chmodSync(join(rootfs, 'srv', 'data'), 0o750);
    mkdirSync(join(rootfs, 'anon-data'));
    writeFileSync(join(rootfs, 'anon-data', 'seed'), 'anonymous seed\n');
    // CVE-2021-30465 class: mount targets that are symlinks to host paths
    symlinkSync(hostTarget, join(rootfs, 'escape'));
    symlinkSync('/etc', join(rootfs, 'cfg'));
    await tsbuildOk(['import', rootfs, IMG, '-c', 'CMD ["sh"]', '-c', 'VOLUME /anon-data'], { root });
  });

  const leftovers = (): string[] => {
    const out: string[] = [];
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(root)) out.push('mount');
    for (const d of ['containers', 'run']) {
      if (!existsSync(join(root, d))) continue;
      for (const e of readdirSync(join(root, d))) if (e !== 'names' || readdirSync(join(root, d, e)).length) out.push(`${d}/${e}`);
    }
    for (const h of ['pids', 'cpu', 'memory', 'freezer']) if (existsSync(join('/sys/fs/cgroup', h, parent))) out.push(`cgroup ${h}`);
    return out;
  };

  afterEach(async () => {
    const ids = (await ts('ps', '-aq', '--no-trunc')).stdout.split('\n').filter(Boolean);
    if (ids.length) await ts('rm', '-f', '-v', ...ids);
    const vols = await volumes();
    if (vols.length) await ts('volume', 'rm', '-f', ...vols);
    expect(leftovers()).toEqual([]);
    expect(readdirSync(hostTarget)).toEqual([]);
  });

  afterAll(() => {
    for (const d of [root, work, hostTarget]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('a named volume keeps its data after rm and shows it to the next container; inspect and ls show it', async () => {
    await runOk('--rm', '-v', 'shared:/data', IMG, 'sh', '-c', 'echo persisted > /data/x');
    expect(await volumes()).toEqual(['shared']);
    const [v] = JSON.parse(await ok('volume', 'inspect', 'shared')) as { Name: string; Driver: string; Mountpoint: string; Labels: object }[];
    expect(v).toMatchObject({ Name: 'shared', Driver: 'local', Mountpoint: join(root, 'volumes', 'shared', '_data'), Labels: {} });
    expect(readFileSync(join(v!.Mountpoint, 'x'), 'utf8')).toBe('persisted\n');
    expect(await runOk('--rm', '--mount', 'type=volume,source=shared,target=/elsewhere', IMG, 'cat', '/elsewhere/x')).toBe('persisted\n');
    expect(await ok('volume', 'ls')).toMatch(/^DRIVER +VOLUME NAME\nlocal +shared\n$/);
    expect(JSON.parse((await ok('volume', 'ls', '--format', 'json')).trim())).toMatchObject({ Name: 'shared', Driver: 'local' });
    expect(await ok('volume', 'create', '--label', 'team=db', 'labelled')).toBe('labelled\n');
    expect(await ok('volume', 'ls', '-q', '--filter', 'label=team=db')).toBe('labelled\n');
    expect(await ok('volume', 'ls', '-q', '--filter', 'dangling=true')).toBe('labelled\nshared\n');
    const missing = await ts('volume', 'inspect', 'nope');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no such volume: nope');
  });

  it('copies the image content into an empty volume on first use, owners and modes kept', async () => {
    const out = await runOk('--rm', '-v', 'cu:/srv/data', IMG, 'sh', '-c', 'stat -c "%u:%g %a %n" /srv/data /srv/data/seed; readlink /srv/data/link; cat /srv/data/seed; echo changed > /srv/data/seed');
    expect(out).toBe('1000:1000 750 /srv/data\n1234:4321 640 /srv/data/seed\nseed\nfrom the image\n');
    const data = join(root, 'volumes', 'cu', '_data');
    expect(statSync(data)).toMatchObject({ uid: 1000, gid: 1000 });
    expect(statSync(join(data, 'seed')).mode & 0o7777).toBe(0o640);
    // not empty any more: the volume's content wins over the image's
    expect(await runOk('--rm', '-v', 'cu:/srv/data', IMG, 'cat', '/srv/data/seed')).toBe('changed\n');
    // nocopy: an empty volume stays empty
    expect(await runOk('--rm', '-v', 'nc:/srv/data:nocopy', IMG, 'ls', '-A', '/srv/data')).toBe('');
  });

  it('read-only volumes and binds refuse writes', async () => {
    const hostDir = mkdtempSync(join(work, 'bind-'));
    for (const m of [['-v', 'rov:/d:ro'], ['--mount', 'type=volume,source=rov,target=/d,readonly'], ['--mount', `type=bind,source=${hostDir},target=/d,ro=true`], ['-v', `${hostDir}:/d:ro`]]) {
      const r = await run('--rm', ...m, IMG, 'sh', '-c', 'touch /d/x');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('Read-only file system');
    }
    expect(readdirSync(hostDir)).toEqual([]);
    expect(readdirSync(join(root, 'volumes', 'rov', '_data'))).toEqual([]);
  });

  it("the image's VOLUME gets an anonymous volume (copied up) that run --rm and rm -v remove", async () => {
    expect(await runOk('--rm', IMG, 'sh', '-c', 'cat /anon-data/seed; grep -c " /anon-data " /proc/self/mountinfo')).toBe('anonymous seed\n1\n');
    expect(await volumes()).toEqual([]);
    // a --tmpfs on the VOLUME's path replaces the anonymous volume, as docker
    expect(await runOk('--tmpfs', '/anon-data', IMG, 'sh', '-c', 'grep " /anon-data " /proc/self/mountinfo | grep -c tmpfs; ls -A /anon-data')).toBe('1\n');
    await ok('rm', (await ok('ps', '-aq')).trim());
    expect(await volumes()).toEqual([]);
    // detached --rm: the monitor removes the container and its anonymous volume
    const id = (await runOk('-d', '--rm', IMG, 'true')).trim();
    for (let i = 0; i < 200 && (await ts('ps', '-aq', '--no-trunc')).stdout.includes(id); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await volumes()).toEqual([]);
    await runOk('--name', 'keeper', '-v', '/extra', IMG, 'true');
    const anon = await volumes();
    expect(anon).toHaveLength(2);
    for (const n of anon) expect(n).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(await ok('volume', 'inspect', anon[0]!))[0].Labels).toHaveProperty(['com.docker.volume.anonymous']);
    await ok('rm', '-v', 'keeper');
    expect(await volumes()).toEqual([]);
    // without -v the anonymous volumes stay (docker), and prune takes them
    await runOk('--name', 'keeper2', IMG, 'true');
    await ok('rm', 'keeper2');
    expect(await volumes()).toHaveLength(1);
    expect(await ok('volume', 'prune', '-f')).toMatch(/^Deleted Volumes:\n[0-9a-f]{64}\n\nTotal reclaimed space: /);
    expect(await volumes()).toEqual([]);
  });

  it('a volume in use by a container, running or stopped, cannot be removed; the error names both', async () => {
    const id = (await runOk('-d', '--name', 'holder', '-v', 'busy:/data', IMG, 'sleep', '60')).trim();
    let r = await ts('volume', 'rm', 'busy');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`remove busy: volume is in use by container holder (${id.slice(0, 12)}, running)`);
    r = await ts('volume', 'rm', '-f', 'busy');
    expect(r.code).not.toBe(0);
    await ok('stop', '-t', '1', 'holder');
    r = await ts('volume', 'rm', 'busy');
    expect(r.stderr).toContain('volume is in use by container holder');
    expect((await ts('volume', 'prune', '-f', '-a')).stdout).not.toContain('busy');
    // the image's VOLUME gave holder an anonymous volume as well
    expect((await volumes()).filter((n) => !/^[0-9a-f]{64}$/.test(n))).toEqual(['busy']);
    await ok('rm', '-v', 'holder');
    await ok('volume', 'rm', 'busy');
    expect(await volumes()).toEqual([]);
  });

  it('mount targets that are symlinks to host paths resolve inside the rootfs (CVE-2021-30465 class)', async () => {
    // /escape -> <host dir>: the volume must appear at <rootfs><host dir>, never on the host's path
    const out = await runOk('--rm', '-v', 'esc:/escape', IMG, 'sh', '-c', `echo inside > /escape/f; cat ${hostTarget}/f; grep -c " ${hostTarget} " /proc/self/mountinfo`);
    expect(out).toBe('inside\n1\n');
    expect(readFileSync(join(root, 'volumes', 'esc', '_data', 'f'), 'utf8')).toBe('inside\n');
    const hostDir = mkdtempSync(join(work, 'bind-'));
    await runOk('--rm', '--mount', `type=bind,source=${hostDir},target=/escape`, IMG, 'sh', '-c', 'echo bound > /escape/g');
    expect(readFileSync(join(hostDir, 'g'), 'utf8')).toBe('bound\n');
    // copy-up follows /cfg -> /etc inside the image: the container's passwd, not the host's
    await runOk('--rm', '-v', 'cfg:/cfg', IMG, 'true');
    const copied = readFileSync(join(root, 'volumes', 'cfg', '_data', 'passwd'), 'utf8');
    expect(copied).toContain('root:x:0:0:root:/root:/bin/sh');
    expect(copied).not.toBe(readFileSync('/etc/passwd', 'utf8'));
    // afterEach checks that the host directory stayed empty
  });

  it('--mount tmpfs options and bind propagation reach the mount table', async () => {
    const hostDir = mkdtempSync(join(work, 'bind-'));
    const out = await runOk('--rm', '--mount', 'type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=1770',
      '--mount', `type=bind,source=${hostDir},target=/sh,bind-propagation=rshared`, '-v', `${hostDir}:/pr`, IMG,
      'sh', '-c', 'grep -E " /(t|sh|pr) " /proc/self/mountinfo; stat -c %a /t');
    const line = (t: string) => out.split('\n').find((l) => l.split(' ')[4] === t) ?? '';
    expect(line('/t')).toMatch(/ - tmpfs tmpfs rw,.*size=2048k,mode=1770/);
    expect(line('/sh')).toMatch(/ shared:\d+ /);
    expect(line('/pr')).not.toMatch(/shared:|master:/);
    expect(out.trim().split('\n').pop()).toBe('1770');
  });

  it('bad mount requests fail before anything is made', async () => {
    let r = await run('--rm', '-v', 'va:/d', '-v', 'vb:/d', IMG, 'true');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('duplicate mount point: /d');
    r = await run('--rm', '--tmpfs', '/d', '-v', 'va:/d', IMG, 'true');
    expect(r.stderr).toContain('duplicate mount point: /d');
    r = await run('--rm', '--mount', 'type=bind,target=/d', IMG, 'true');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('field Source must not be empty');
    r = await run('--rm', '--mount', `type=bind,source=${join(work, 'missing')},target=/d`, IMG, 'true');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`bind source path does not exist: ${join(work, 'missing')}`);
    r = await run('--rm', '-v', '/d:/e:bogus', IMG, 'true');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid mode: bogus');
    expect(await volumes()).toEqual([]);
  });
});
