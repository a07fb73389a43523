/**
 * Offline base images for tests: a busybox root filesystem and a Debian bookworm minbase root
 * filesystem, each made once per machine by the scripts in testdata/images/ and kept under the test
 * cache directory. The returned directories are SHARED between test files and workers: treat them as
 * read-only (use them as an overlay lower dir, import them, or copy them).
 *
 * Concurrency: a directory is built under a temporary name and renamed into place (atomic), and a
 * lock file makes other workers wait instead of building the same thing twice.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './tools.js';

/** testdata/images: the scripts that make the base images. */
export const IMAGE_SCRIPTS = join(REPO_ROOT, 'testdata', 'images');

/**
 * The test cache directory: $TSBUILD_TEST_CACHE, else /var/cache/tsbuild-test for root, else a
 * per-user directory under the OS temp dir. The Debian script keeps its tarball here too.
 */
export function testCacheDir(): string {
  const env = process.env['TSBUILD_TEST_CACHE'];
  if (env) return env;
  if (process.getuid?.() === 0) return '/var/cache/tsbuild-test';
  return join(tmpdir(), `tsbuild-test-cache-${process.getuid?.() ?? 'user'}`);
}

/** The path of the Debian tarball cache written by debian-rootfs.sh. */
export function debianTarballPath(): string {
  return join(testCacheDir(), 'debian-bookworm-minbase.tar');
}

const inProcess = new Map<string, Promise<string>>();

/**
 * Returns a cached busybox rootfs directory (bin/busybox, applet links, etc/passwd and etc/group,
 * tmp 1777), made by testdata/images/busybox-rootfs.sh. The directory name carries a key of the
 * script and the host's busybox binary, so a changed script or package gives a fresh directory.
 */
export function busyboxRootfs(): Promise<string> {
  const script = join(IMAGE_SCRIPTS, 'busybox-rootfs.sh');
  const bb = statSync('/bin/busybox', { throwIfNoEntry: false });
  const key = shortHash(readFileSync(script), `${bb?.size ?? 0}:${bb?.mtimeMs ?? 0}`);
  return cachedDir(`busybox-rootfs-${key}`, (tmp) => runScript(script, tmp, 60_000));
}

/**
 * Returns a cached Debian bookworm minbase rootfs directory, made by testdata/images/debian-rootfs.sh
 * (which unpacks its tarball cache when present, else runs debootstrap against the host's mirror).
 * Needs root; check {@link debianUnavailable} (or capabilities' needDebianRootfs) first.
 */
export function debianRootfs(): Promise<string> {
  const why = debianUnavailable();
  if (why) return Promise.reject(new Error(`debian rootfs unavailable: ${why}`));
  const script = join(IMAGE_SCRIPTS, 'debian-rootfs.sh');
  const key = shortHash(readFileSync(script), '');
  return cachedDir(`debian-bookworm-minbase-${key}`, (tmp) => runScript(script, tmp, 15 * 60_000));
}

/** Why {@link debianRootfs} cannot work here, or undefined. */
export function debianUnavailable(): string | undefined {
  if (process.env['TSBUILD_TEST_NO_DEBIAN'] === '1') return 'TSBUILD_TEST_NO_DEBIAN=1';
  if (process.getuid?.() !== 0) return 'making the debian rootfs needs root';
  if (!existsSync(debianTarballPath()) && !existsSync('/usr/sbin/debootstrap')) return 'debootstrap is not installed and no cached debian tarball exists';
  return undefined;
}

function shortHash(data: Buffer, extra: string): string {
  return createHash('sha256').update(data).update(extra).digest('hex').slice(0, 12);
}

function runScript(script: string, target: string, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script, target], { timeout, maxBuffer: 16 << 20, env: { ...process.env, TSBUILD_TEST_CACHE: testCacheDir() } }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${script} ${target} failed: ${err.message}\n${stderr}`, { cause: err }));
      else resolve();
    });
  });
}

/**
 * Makes `<cache>/<name>` once: serialised across processes by `<name>.lock` (holding the owner's
 * pid; a lock of a dead process is taken over), built in a temp dir and renamed into place.
 */
function cachedDir(name: string, make: (tmp: string) => Promise<void>): Promise<string> {
  let p = inProcess.get(name);
  if (!p) {
    p = makeCachedDir(testCacheDir(), name, make);
    p.catch(() => inProcess.delete(name));
    inProcess.set(name, p);
  }
  return p;
}

/**
 * Returns `<root>/<name>`, first making it with `make(tmpDir)` unless it exists. Safe across
 * processes: one maker at a time holds `<name>.lock`, the others wait for the directory to appear.
 * `make` must fill the temp dir it is given; it is renamed into place when `make` resolves.
 */
export async function makeCachedDir(root: string, name: string, make: (tmp: string) => Promise<void>): Promise<string> {
  const final = join(root, name);
  if (existsSync(final)) return final;
  await mkdir(root, { recursive: true });
  const lock = `${final}.lock`;
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    if (existsSync(final)) return final;
    if (await tryLock(lock)) break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  try {
    if (existsSync(final)) return final;
    await removeStaleTemps(root, name);
    const tmp = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await make(tmp);
      await rename(tmp, final);
    } catch (e) {
      // Never recurse into something a failed maker left mounted (debootstrap mounts proc/sys).
      const mounted = await mountsUnder(tmp);
      if (mounted.length) throw new Error(`${tmp} still has mounts (${mounted.join(', ')}); not removing it`, { cause: e });
      await rm(tmp, { recursive: true, force: true });
      if (existsSync(final)) return final;
      throw e;
    }
    return final;
  } finally {
    await unlink(lock).catch(() => {});
  }
}

/** Creates `lock` exclusively; takes over a lock whose owner process is gone. */
async function tryLock(lock: string): Promise<boolean> {
  try {
    const fh = await open(lock, 'wx');
    await fh.writeFile(String(process.pid));
    await fh.close();
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
  if (pid > 0 && !isAlive(pid)) {
    // Only one taker wins: rename the stale lock away first.
    const stale = `${lock}.stale-${process.pid}`;
    try {
      await rename(lock, stale);
      await unlink(stale);
    } catch {
      /* someone else took it over */
    }
  }
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function removeStaleTemps(root: string, name: string): Promise<void> {
  for (const f of await readdir(root)) {
    const m = f.startsWith(`${name}.tmp-`) ? /\.tmp-(\d+)-/.exec(f) : null;
    if (m && !isAlive(Number(m[1]))) await rm(join(root, f), { recursive: true, force: true });
  }
}

/** Mount points at or below `dir`, from /proc/self/mountinfo. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return info.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
}
