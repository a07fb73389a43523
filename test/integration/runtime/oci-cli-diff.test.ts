/**
 * Differential test: one bundle run by `tsbuild runtime run`, `crun run` and `runc run` must
 * give the same probe output for hostname, id, caps, seccomp and the mount list.
 *
 * Intended differences (normalised below, documented here):
 * - mount order: crun mounts the v1 cgroup hierarchies in reverse order; the lists are sorted.
 * - device nodes: crun 1.8 bind-mounts the host's /dev/null, zero, full, random, urandom and
 *   tty (devtmpfs mounts) where runc and tsbuild mknod them on the /dev tmpfs; those mount
 *   lines are dropped.
 * - masked files: all three bind /dev/null over them; crun's /dev/null is the host's
 *   devtmpfs and it remounts the bind read-only, so only the path is compared.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SECCOMP_PROFILE, profileToSpec } from '../../../runtime/seccomp/index.js';
import { DEFAULT_CAPS, TEST_SECCOMP, makeBundle, nativeSkipReason, testSpec, type TestBundle } from '../../runtime/helper/bundle.js';

const CLI = fileURLToPath(new URL('../../../dist/src/cli/main.js', import.meta.url));

function which(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

const why = nativeSkipReason() ?? (existsSync(CLI) ? undefined : 'the CLI is not built (npm run build)');
if (why) console.warn(`skip: ${why}`);

let bundle: TestBundle;
let state: string;
let n = 0;

type Runner = (id: string) => { status: number | null; stdout: string; stderr: string };
const runners: Record<string, Runner> = {
  tsbuild: (id) => spawnSync('node', [CLI, '--root', join(state, 'tsbuild'), 'runtime', 'run', '--bundle', bundle.dir, id], { encoding: 'utf8' }),
  crun: (id) => spawnSync('crun', ['--root', join(state, 'crun'), 'run', '--bundle', bundle.dir, id], { encoding: 'utf8' }),
  runc: (id) => spawnSync('runc', ['--root', join(state, 'runc'), 'run', '--bundle', bundle.dir, id], { encoding: 'utf8' }),
};

/** Why a peer runtime cannot run containers here (probed with a trivial container), or undefined. */
function peerSkipReason(name: 'crun' | 'runc'): string | undefined {
  if (!which(name)) return `${name} is not installed`;
  bundle.writeSpec(testSpec(['/bin/test-init', 'exit', '0']));
  const r = runners[name]!(`probe-${name}-${process.pid}`);
  if (r.status !== 0) return `${name} cannot run a container on this host: ${r.stderr.trim().split('\n').pop()}`;
  return undefined;
}

const MASKED_FILES = new Set(['/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug']);

function sortMounts(out: string): string {
  const lines = out
    .split('\n')
    .filter((l) => !/^\/dev\/(null|zero|full|random|urandom|tty) /.test(l))
    .map((l) => (MASKED_FILES.has(l.split(' ')[0]!) ? `${l.split(' ')[0]} (masked file)` : l));
  const mounts = lines.filter((l) => l.startsWith('/')).sort();
  return [...lines.filter((l) => !l.startsWith('/')), ...mounts].join('\n');
}

describe.skipIf(!!why)('tsbuild runtime vs crun vs runc', () => {
  const skip: Record<string, string | undefined> = {};
  beforeAll(() => {
    bundle = makeBundle('tsbuild-diff-');
    state = mkdtempSync(join(tmpdir(), 'tsbuild-diff-state-'));
    for (const p of ['crun', 'runc'] as const) {
      skip[p] = peerSkipReason(p);
      if (skip[p]) console.warn(`skip ${p}: ${skip[p]}`);
    }
  });
  afterAll(() => {
    for (const [tool, args] of [['crun', ['--root', join(state ?? '', 'crun')]], ['runc', ['--root', join(state ?? '', 'runc')]]] as const) {
      try {
        for (const id of JSON.parse(execFileSync(tool, [...args, 'list', '--format', 'json'], { encoding: 'utf8' }) || '[]') as { id: string }[] ?? []) {
          spawnSync(tool, [...args, 'delete', '--force', id.id]);
        }
      } catch {
        /* nothing listed */
      }
    }
    bundle?.remove();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  const cases: [string, () => Record<string, unknown>, string][] = [
    ['default spec', () => testSpec(['/bin/test-init', 'hostname', 'id', 'caps', 'seccomp', 'fds', 'cwd', 'mounts']), '/proc proc rw\n'],
    ['seccomp profile and a non-root user', () => {
      const s = testSpec(['/bin/test-init', 'hostname', 'id', 'caps', 'seccomp', 'syscall', 'keyctl', 'mounts']);
      (s.linux as Record<string, unknown>).seccomp = TEST_SECCOMP;
      (s.process as Record<string, unknown>).user = { uid: 1000, gid: 1000, additionalGids: [10, 20] };
      return s;
    }, 'keyctl EPERM\n'],
    ['Docker default seccomp profile without no_new_privs', () => {
      const s = testSpec(['/bin/test-init', 'caps', 'seccomp', 'syscall', 'keyctl', 'syscall', 'unshare-user', 'syscall', 'kexec_load', 'syscall', 'getpid']);
      (s.linux as Record<string, unknown>).seccomp = profileToSpec(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPS });
      (s.process as Record<string, unknown>).noNewPrivileges = false;
      return s;
    }, 'unshare-user EPERM\n'],
    ['bind mounts and read-write root', () => {
      const s = testSpec(['/bin/test-init', 'mounts', 'exit', '7'], 'differential');
      (s.root as Record<string, unknown>).readonly = false;
      (s.mounts as unknown[]).push({ destination: '/data', type: 'bind', source: join(bundle.dir, 'rootfs/etc'), options: ['rbind', 'ro'] });
      (s.mounts as unknown[]).push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m'] });
      return s;
    }, '/scratch tmpfs rw\n'],
  ];

  for (const [name, make, marker] of cases) {
    it(name, () => {
      bundle.writeSpec(make());
      const ours = runners.tsbuild!(`ts-${process.pid}-${++n}`);
      expect(ours.stderr).toBe('');
      let compared = 0;
      for (const peer of ['crun', 'runc'] as const) {
        if (skip[peer]) continue;
        const theirs = runners[peer]!(`${peer}-${process.pid}-${++n}`);
        expect(ours.status, `${peer} exit status`).toBe(theirs.status);
        expect(sortMounts(ours.stdout), `probe output vs ${peer}`).toBe(sortMounts(theirs.stdout));
        compared++;
      }
      if (compared === 0) console.warn('skip: no peer runtime could run containers here; only tsbuild ran');
      expect(ours.stdout).toContain(marker);
    });
  }
});
