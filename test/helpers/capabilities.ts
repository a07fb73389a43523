/**
 * Host capability probes for tests. Each probe returns a reason string when the host cannot run
 * the test ("needs root", "overlay mount failed: ..."), or undefined when it can. Probes do the real
 * thing where that is cheap (mount an overlay, run `unshare -U`, run crun/podman on a tiny rootfs),
 * are memoised per process, and leave nothing behind.
 *
 * Pattern:
 *   const why = needRoot() ?? needOverlay();
 *   it.skipIf(skipUnless(why))('mounts the rootfs', async () => { ... });
 * or for several: `skipUnless(needRoot(), needTool('skopeo'))`.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { debianUnavailable } from './base-images.js';

const memo = new Map<string, string | undefined>();
function once(key: string, probe: () => string | undefined): string | undefined {
  if (!memo.has(key)) {
    let r: string | undefined;
    try {
      r = probe();
    } catch (e) {
      r = `${key} probe failed: ${(e as Error).message}`;
    }
    memo.set(key, r);
  }
  return memo.get(key);
}

/**
 * Returns true when any reason is given, after printing each one as `skip: <reason>` (so a skipped
 * test is never silent); false when every requirement is met. Use with `it.skipIf(...)`.
 */
export function skipUnless(...reasons: (string | undefined)[]): boolean {
  const given = reasons.filter((r): r is string => !!r);
  for (const r of given) console.warn(`skip: ${r}`);
  return given.length > 0;
}

/** The first reason among `reasons`, or undefined: `firstReason(needRoot(), needOverlay())`. */
export function firstReason(...reasons: (string | undefined)[]): string | undefined {
  return reasons.find((r) => !!r);
}

/** Needs uid 0. */
export function needRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root';
}

/** Needs `name` as an executable on PATH (or an absolute path that is executable). */
export function needTool(name: string): string | undefined {
  return once(`tool:${name}`, () => (findTool(name) ? undefined : `${name} is not installed`));
}

/** The absolute path of an executable on PATH, or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = name.includes('/') ? [''] : (process.env['PATH'] ?? '/usr/bin:/bin').split(delimiter);
  for (const d of dirs) {
    const p = d ? join(d, name) : name;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Needs overlayfs mounts: really mounts a one-file overlay in a temp dir and unmounts it. */
export function needOverlay(): string | undefined {
  return once('overlay', () => {
    const root = needRoot();
    if (root) return `overlay mounts: ${root}`;
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-probe-overlay-'));
    try {
      for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d));
      writeFileSync(join(dir, 'lower', 'f'), 'x');
      const opts = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`;
      const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, join(dir, 'merged')], { encoding: 'utf8' });
      if (m.status !== 0) return `overlay mount failed: ${(m.stderr || m.error?.message || '').trim()}`;
      const ok = existsSync(join(dir, 'merged', 'f'));
      const u = spawnSync('umount', [join(dir, 'merged')], { encoding: 'utf8' });
      if (u.status !== 0) return `overlay umount failed: ${u.stderr.trim()}`;
      return ok ? undefined : 'overlay mount did not show the lower dir';
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** The v1 controllers mounted on this host, each with its mount point (from /proc/self/mountinfo). */
export function cgroupV1Mounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup') continue;
    const mountPoint = pre.split(' ')[4]!;
    for (const o of (superOpts ?? '').split(',')) {
      if (['rw', 'ro'].includes(o) || o.includes('=')) continue;
      if (!out.has(o)) out.set(o, mountPoint);
    }
  }
  return out;
}

/** Needs a writable cgroup v1 hierarchy for each of `controllers` (e.g. ['memory', 'pids']) and root. */
export function needCgroupV1(controllers: readonly string[]): string | undefined {
  return once(`cgroupv1:${controllers.join(',')}`, () => {
    const root = needRoot();
    if (root) return `cgroup v1: ${root}`;
    const mounts = cgroupV1Mounts();
    const missing = controllers.filter((c) => !mounts.has(c));
    if (missing.length) return `cgroup v1 controllers not mounted: ${missing.join(', ')}`;
    for (const c of controllers) {
      try {
        accessSync(mounts.get(c)!, constants.W_OK);
      } catch {
        return `cgroup v1 ${c} hierarchy at ${mounts.get(c)} is not writable`;
      }
    }
    return undefined;
  });
}

/** Needs a cgroup2 hierarchy (mounted anywhere) offering each of `controllers` in cgroup.controllers. */
export function needCgroupV2(controllers: readonly string[] = []): string | undefined {
  return once(`cgroupv2:${controllers.join(',')}`, () => {
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' - ')[1]?.startsWith('cgroup2 '));
    if (!line) return 'no cgroup2 hierarchy mounted';
    const mp = line.split(' ')[4]!;
    const have = readFileSync(join(mp, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
    const missing = controllers.filter((c) => !have.includes(c));
    return missing.length ? `cgroup2 at ${mp} lacks controllers: ${missing.join(', ')}` : undefined;
  });
}

/** Needs user namespaces: runs `unshare --user --map-root-user true`. */
export function needUserNs(): string | undefined {
  return once('userns', () => {
    if (!findTool('unshare')) return 'unshare (util-linux) is not installed';
    const r = spawnSync('unshare', ['--user', '--map-root-user', 'true'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? undefined : `user namespaces unavailable: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
  });
}

/** A temp bundle dir with a rootfs holding only a copy of the static /bin/busybox; caller removes it. */
function probeRootfs(): { dir: string; rootfs: string } | string {
  if (!existsSync('/bin/busybox')) return '/bin/busybox (busybox-static) is not installed';
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-probe-rt-'));
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  spawnSync('chmod', ['0755', join(rootfs, 'bin', 'busybox')]);
  return { dir, rootfs };
}

/** Needs crun able to run a container on this host: runs `busybox true` from a throwaway bundle. */
export function needCrunWorks(): string | undefined {
  return once('crun', () => {
    const why = needRoot() ?? needTool('crun');
    if (why) return `crun: ${why}`;
    const b = probeRootfs();
    if (typeof b === 'string') return b;
    const id = `tsbuild-probe-${process.pid}`;
    try {
      const spec = spawnSync('crun', ['spec'], { cwd: b.dir, encoding: 'utf8' });
      if (spec.status !== 0) return `crun spec failed: ${spec.stderr.trim()}`;
      const cfgPath = join(b.dir, 'config.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { process: { args: string[]; terminal: boolean } };
      cfg.process.args = ['/bin/busybox', 'true'];
      cfg.process.terminal = false;
      writeFileSync(cfgPath, JSON.stringify(cfg));
      const r = spawnSync('crun', ['run', '--bundle', b.dir, id], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
      if (r.status !== 0) return `crun cannot run containers here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
      return undefined;
    } finally {
      spawnSync('crun', ['delete', '--force', id], { stdio: 'ignore' });
      rmSync(b.dir, { recursive: true, force: true });
    }
  });
}

/** Needs podman able to run a container here: `podman run --rm --rootfs <busybox> true`, no network. */
export function needPodmanWorks(): string | undefined {
  return once('podman', () => {
    const why = needRoot() ?? needTool('podman');
    if (why) return `podman: ${why}`;
    const b = probeRootfs();
    if (typeof b === 'string') return b;
    try {
      const r = spawnSync('podman', ['run', '--rm', '--network', 'none', '--rootfs', b.rootfs, '/bin/busybox', 'true'], { encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0) return `podman cannot run containers here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ')}`;
      return undefined;
    } finally {
      rmSync(b.dir, { recursive: true, force: true });
    }
  });
}

/** Needs the Debian base image (root, and debootstrap or its cached tarball; not TSBUILD_TEST_NO_DEBIAN=1). */
export function needDebianRootfs(): string | undefined {
  const why = debianUnavailable();
  return why ? `debian rootfs: ${why}` : undefined;
}

/** Needs the built CLI (dist/src/cli/main.js); .ci/setup builds it. */
export function needBuiltCli(): string | undefined {
  return existsSync(new URL('../../dist/src/cli/main.js', import.meta.url)) ? undefined : 'dist/src/cli/main.js is missing (run npm run build)';
}
