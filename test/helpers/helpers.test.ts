import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { busyboxRootfs, debianRootfs, IMAGE_SCRIPTS, makeCachedDir } from './base-images.js';
import { findTool, firstReason, needBuiltCli, needDebianRootfs, needRoot, needTool, skipUnless } from './capabilities.js';
import { makeTempDir, removeTempDirs, run, runTsbuild } from './tools.js';

const execFileP = promisify(execFile);
afterAll(removeTempDirs);

/** Every entry of a tree as "path mode mtime uid gid target". */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const p = join(rel, name);
      const st = await lstat(join(dir, p));
      const target = st.isSymbolicLink() ? await readlink(join(dir, p)) : '';
      out.push(`${p} ${st.mode.toString(8)} ${Math.floor(st.mtimeMs / 1000)} ${st.uid}:${st.gid} ${st.size} ${target}`);
      if (st.isDirectory()) await walk(p);
    }
  }
  await walk('');
  return out;
}

describe('busybox rootfs', () => {
  it('has a static busybox, applet links, accounts, a sticky tmp', async () => {
    const dir = await busyboxRootfs();
    expect((await stat(join(dir, 'bin/busybox'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(dir, 'bin/sh'))).toBe('/bin/busybox');
    expect(await readlink(join(dir, 'bin/wget'))).toBe('/bin/busybox');
    expect(await readlink(join(dir, 'usr/bin/wget'))).toBe('/bin/busybox');
    expect(await readlink(join(dir, 'sbin/ifconfig'))).toBe('/bin/busybox');
    expect((await stat(join(dir, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect((await stat(join(dir, 'root'))).mode & 0o777).toBe(0o700);
    expect(await readFile(join(dir, 'etc/passwd'), 'utf8')).toMatch(/^root:x:0:0:root:\/root:\/bin\/sh$/m);
    expect(await readFile(join(dir, 'etc/passwd'), 'utf8')).toMatch(/^nobody:x:65534:65534:/m);
    expect(await readFile(join(dir, 'etc/group'), 'utf8')).toMatch(/^nogroup:x:65534:$/m);
    expect(await busyboxRootfs()).toBe(dir);
  });

  const whyChroot = firstReason(needRoot(), needTool('chroot'));
  it.skipIf(skipUnless(whyChroot))('runs a shell under chroot', async () => {
    const dir = await busyboxRootfs();
    const r = await run('chroot', [dir, '/bin/sh', '-c', 'echo ok $(id -un) && ls /usr/bin/env']);
    expect(r).toMatchObject({ code: 0, stdout: 'ok root\n/usr/bin/env\n' });
  });

  it('is deterministic: two runs of the script give identical trees, every mtime SOURCE_DATE_EPOCH', async () => {
    const tmp = await makeTempDir();
    const script = join(IMAGE_SCRIPTS, 'busybox-rootfs.sh');
    await execFileP('bash', [script, join(tmp, 'a')]);
    await execFileP('bash', [script, join(tmp, 'b')], { env: { ...process.env, SOURCE_DATE_EPOCH: '0' } });
    const a = await listing(join(tmp, 'a'));
    expect(a.length).toBeGreaterThan(300);
    expect(await listing(join(tmp, 'b'))).toEqual(a);
    expect(a.every((l) => l.split(' ')[2] === '0')).toBe(true);
    // idempotent: running again over its own output changes nothing
    await execFileP('bash', [script, join(tmp, 'a')]);
    expect(await listing(join(tmp, 'a'))).toEqual(a);
  });

  it('refuses to write into a foreign non-empty dir', async () => {
    const tmp = await makeTempDir();
    await writeFile(join(tmp, 'precious'), 'x');
    const r = await run('bash', [join(IMAGE_SCRIPTS, 'busybox-rootfs.sh'), tmp]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('not empty and is not a busybox rootfs');
    expect(await readdir(tmp)).toEqual(['precious']);
  });
});

describe('debian rootfs', () => {
  const why = needDebianRootfs();
  it.skipIf(skipUnless(why))('is a cleaned bookworm minbase tree, reused when present', async () => {
    const dir = await debianRootfs();
    expect(await readFile(join(dir, 'etc/debian_version'), 'utf8')).toMatch(/^12\./);
    expect(await readFile(join(dir, 'etc/machine-id'), 'utf8')).toBe('');
    expect(await readdir(join(dir, 'var/lib/apt/lists'))).toEqual(['partial']);
    expect((await readdir(join(dir, 'var/cache/apt'))).sort()).toEqual(['archives']);
    const r = await run('find', [join(dir, 'var/log'), '-type', 'f']);
    expect(r.stdout).toBe('');
    expect((await lstat(join(dir, 'bin'))).isSymbolicLink()).toBe(true); // merged /usr
    const again = await run('bash', [join(IMAGE_SCRIPTS, 'debian-rootfs.sh'), dir]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('nothing to do');
  });
});

describe('makeCachedDir', () => {
  it('makes the dir once when called concurrently, and reuses it', async () => {
    const root = await makeTempDir();
    const make = vi.fn(async (tmp: string) => {
      await mkdir(tmp);
      await new Promise((r) => setTimeout(r, 300));
      await writeFile(join(tmp, 'f'), 'made');
    });
    const [a, b, c] = await Promise.all([makeCachedDir(root, 'x', make), makeCachedDir(root, 'x', make), makeCachedDir(root, 'x', make)]);
    expect(new Set([a, b, c])).toEqual(new Set([join(root, 'x')]));
    expect(make).toHaveBeenCalledTimes(1);
    expect(await readFile(join(root, 'x', 'f'), 'utf8')).toBe('made');
    expect(await readdir(root)).toEqual(['x']); // no lock or temp left
  });

  it('takes over a lock left by a dead process, and leaves no temp dir when make fails', async () => {
    const root = await makeTempDir();
    await writeFile(join(root, 'y.lock'), '999999999');
    await expect(makeCachedDir(root, 'y', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await readdir(root)).toEqual([]);
    expect(await makeCachedDir(root, 'y', async (tmp) => mkdir(tmp))).toBe(join(root, 'y'));
  });
});

describe('capabilities', () => {
  it('skipUnless prints every reason and says whether to skip', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(skipUnless(undefined, undefined)).toBe(false);
      expect(warn).not.toHaveBeenCalled();
      expect(skipUnless(undefined, 'needs root', 'x is not installed')).toBe(true);
      expect(warn.mock.calls).toEqual([['skip: needs root'], ['skip: x is not installed']]);
    } finally {
      warn.mockRestore();
    }
  });

  it('needTool finds tools on PATH and names missing ones', () => {
    expect(needTool('sh')).toBeUndefined();
    expect(findTool('sh')).toMatch(/\/sh$/);
    expect(needTool('tsbuild-no-such-tool')).toBe('tsbuild-no-such-tool is not installed');
    expect(needRoot() === undefined).toBe(process.getuid?.() === 0);
  });
});

describe('tools', () => {
  it('run returns code, stdout, stderr and feeds input', async () => {
    expect(await run('sh', ['-c', 'echo out; echo err >&2; exit 3'])).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await run('cat', [], { input: 'piped' })).stdout).toBe('piped');
    expect((await run('sh', ['-c', 'echo $FOO'], { env: { FOO: 'bar' } })).stdout).toBe('bar\n');
    expect((await run('sh', ['-c', 'kill -TERM $$'])).code).toBe(143);
  });

  const why = needBuiltCli();
  it.skipIf(skipUnless(why))('runTsbuild runs the built CLI', async () => {
    const r = await runTsbuild(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0\.1\.0|tsbuild/);
    expect((await runTsbuild(['no-such-command'])).code).not.toBe(0);
  });
});
