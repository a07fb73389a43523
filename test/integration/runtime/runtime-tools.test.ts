/**
 * OCI runtime-tools validation (github.com/opencontainers/runtime-tools, its `validation/`
 * programs, TAP output) against `tsbuild runtime`, Debian's crun and runc, in one run.
 *
 * Each program runs with RUNTIME=<a wrapper script> in a work dir holding `runtimetest` and a
 * busybox `rootfs-amd64.tar.gz` (test/helpers/runtime-tools.ts). Every runtime gets its own state
 * dir (`--root`); the programs' bundles go to a temp dir of the run. Scoring (scoreTap): one
 * point per TAP line, a program that exits non-zero is one failing point, a program that prints
 * no point passes iff it printed no error diagnostic.
 *
 * The assertion: every point crun passes, tsbuild passes, except the argued EXCEPTIONS below.
 *
 * Programs run: PROGRAMS (47 of v0.9.0's 58: the lifecycle, hooks, namespaces, mounts, process,
 * sysctl, rlimits, masked/read-only paths, devices, and one container's worth of each cgroup
 * path kind), about 3 minutes for the three runtimes on 2 cores. TSBUILD_RUNTIME_TOOLS=all runs
 * every program but the three in NEVER_RUN (the README counts come from such a run). Left out
 * of the default list, for time (each starts 6 to 16 containers; a Node CLI call costs a
 * second on a loaded machine): linux_cgroups_{blkio,cpus,memory,network} and their relative_
 * twins except relative_memory and relative_pids; for depending on host LSMs:
 * linux_mount_label (SELinux), linux_process_apparmor_profile (AppArmor).
 *
 * NEVER_RUN:
 * - linux_ns_itype: a config with no namespaces at all; crun and runc then make the container's
 *   mounts (rootfs bind, proc, sysfs, /dev tmpfs, devpts, mqueue) in the HOST's mount namespace
 *   and leave them mounted after delete, which a test run must not do to its host. tsbuild
 *   refuses a config without a mount namespace, on purpose (native/README.md).
 * - linux_cgroups_cpus, linux_cgroups_network: 16 and 8 containers, a minute or more each; the
 *   relative_ twins check the same files on one container.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProgram, runtimeTools, runtimeToolsWorkDir, scoreTap, type ProgramRun, type TapPoint } from '../../helpers/runtime-tools.js';
import { TSBUILD_MAIN } from '../../helpers/tools.js';

const RUNTIMES = ['tsbuild', 'crun', 'runc'] as const;
type RuntimeName = (typeof RUNTIMES)[number];

const NEVER_RUN = new Set(['linux_cgroups_cpus', 'linux_cgroups_network', 'linux_ns_itype']);

const PROGRAMS = new Set([
  'create', 'start', 'state', 'kill', 'kill_no_effect', 'killsig', 'delete', 'delete_only_create_resources', 'delete_resources',
  'hooks', 'hooks_stdin', 'prestart', 'prestart_fail', 'poststart', 'poststart_fail', 'poststop', 'poststop_fail',
  'default', 'config_updates_without_affect', 'misc_props', 'mounts', 'root_readonly_true', 'hostname', 'pidfile',
  'linux_ns_nopath', 'linux_ns_path', 'linux_ns_path_type', 'linux_uid_mappings', 'linux_sysctl', 'linux_masked_paths',
  'linux_readonly_paths', 'linux_rootfs_propagation', 'linux_devices', 'linux_seccomp',
  'process', 'process_user', 'process_capabilities', 'process_capabilities_fail', 'process_oom_score_adj', 'process_rlimits', 'process_rlimits_fail',
  'linux_cgroups_pids', 'linux_cgroups_relative_pids', 'linux_cgroups_devices', 'linux_cgroups_hugetlb', 'linux_cgroups_relative_memory',
  'linux_cgroups_relative_devices',
]);

/**
 * Points crun passes and tsbuild does not, on purpose. A key is a point key or a program name
 * (then it covers all of that program's points).
 */
const EXCEPTIONS: Readonly<Record<string, string>> = {
  // Empty: tsbuild passes every point crun passes (the one design difference, no mount
  // namespace, is linux_ns_itype in NEVER_RUN). Points crun fails as well are not compared;
  // in v0.9.0 most of them are the suite's own: `prestart` wants prestart hooks after `start`
  // (runtime-spec 1.0.2's wording; runc, crun and tsbuild run them during create, as the spec
  // says since 1.1), `hooks` compares its log with lines its hooks never write ("post-start1"
  // for "post-start1 called"), `pidfile` kills a `true` that has already exited and wants that
  // to succeed, which contradicts the kill contract.
};

/** Programs that create cgroups at fixed paths (/cgrouptest, testdir/...): never two at once. */
function usesFixedCgroup(program: string): boolean {
  return program.startsWith('linux_cgroups_') || program === 'delete_resources' || program === 'delete_only_create_resources';
}

function which(tool: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

let why: string | undefined = process.getuid?.() !== 0 ? 'runtime-tools needs root' : !existsSync(TSBUILD_MAIN) ? 'the CLI is not built (npm run build)' : undefined;
for (const t of ['crun', 'runc', 'tar']) if (!why && !which(t)) why = `${t} is not installed`;
if (why) console.warn(`skip: ${why}`);

let work = '';
let tmp = '';
let version = '';
const runs = new Map<RuntimeName, ProgramRun[]>();
const points = new Map<RuntimeName, Map<string, TapPoint['result']>>();

/** One wrapper per runtime: its own state dir, runc-style arguments passed through. */
async function wrappers(): Promise<Record<RuntimeName, string>> {
  const out = {} as Record<RuntimeName, string>;
  const lines: Record<RuntimeName, string> = {
    tsbuild: `exec node ${JSON.stringify(TSBUILD_MAIN)} --root ${JSON.stringify(join(work, 'state-tsbuild'))} runtime "$@"`,
    crun: `exec ${which('crun')} --root ${JSON.stringify(join(work, 'state-crun'))} "$@"`,
    runc: `exec ${which('runc')} --root ${JSON.stringify(join(work, 'state-runc'))} "$@"`,
  };
  for (const r of RUNTIMES) {
    const p = join(work, `runtime-${r}`);
    await writeFile(p, `#!/bin/sh\n${lines[r]}\n`);
    await chmod(p, 0o755);
    out[r] = p;
  }
  return out;
}

/** Kills and deletes what a runtime left in its state dir. */
function deleteLeftovers(runtime: RuntimeName, wrapper: string): void {
  const list = spawnSync(wrapper, runtime === 'tsbuild' ? ['list', '--format', 'json'] : ['list', '--format', 'json'], { encoding: 'utf8', timeout: 60_000 });
  let ids: string[] = [];
  try {
    ids = ((JSON.parse(list.stdout || '[]') as { id: string }[] | null) ?? []).map((c) => c.id);
  } catch {
    /* nothing listed */
  }
  for (const id of ids) {
    spawnSync(wrapper, ['kill', id, 'KILL'], { timeout: 60_000 });
    spawnSync(wrapper, ['delete', '--force', id], { timeout: 60_000 });
  }
}

/** Mount points at or below `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  return info.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** The cgroups the programs name (absolute /cgrouptest, relative testdir/cgrouptest/container), removed when empty. */
function removeTestCgroups(): void {
  const root = '/sys/fs/cgroup';
  const dirs: string[] = [];
  const walk = (d: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (n === 'cgrouptest' || n === 'testdir') dirs.push(p);
      if (depth < 4) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  const all: string[] = [];
  for (const d of dirs) {
    const sub = spawnSync('find', [d, '-depth', '-type', 'd'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    all.push(...sub);
  }
  for (const d of [...new Set(all)].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(d);
    } catch {
      /* busy or gone */
    }
  }
}

async function runAll(tools: string, programs: readonly string[], wrap: Record<RuntimeName, string>): Promise<void> {
  const jobs = programs.flatMap((p) => RUNTIMES.map((r) => ({ program: p, runtime: r })));
  // cgroup programs first (they are serialised), the rest fill the other lanes
  jobs.sort((a, b) => Number(usesFixedCgroup(b.program)) - Number(usesFixedCgroup(a.program)));
  let cgroupBusy: Promise<void> = Promise.resolve();
  const lane = async (): Promise<void> => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const { program, runtime } = job;
      let r: ProgramRun;
      if (usesFixedCgroup(program)) {
        const prev = cgroupBusy;
        let release!: () => void;
        cgroupBusy = new Promise((res) => (release = res));
        await prev;
        try {
          r = await runProgram(tools, program, wrap[runtime], work, tmp, 180_000);
        } finally {
          release();
        }
      } else {
        r = await runProgram(tools, program, wrap[runtime], work, tmp, 180_000);
      }
      runs.get(runtime)!.push(r);
    }
  };
  // the programs mostly wait (1 s status polls): more lanes than cores
  await Promise.all(Array.from({ length: 6 }, () => lane()));
}

describe.skipIf(!!why)('OCI runtime-tools validation: tsbuild, crun, runc', () => {
  let skip: string | undefined;

  beforeAll(async () => {
    const tools = await runtimeTools();
    if (!tools.dir) {
      skip = tools.skip;
      return;
    }
    version = tools.version!;
    work = await runtimeToolsWorkDir(tools.dir);
    tmp = join(work, 'tmp');
    await mkdir(tmp);
    // a user-namespaced container root must reach the bundles (linux_uid_mappings)
    await chmod(work, 0o755);
    await chmod(tmp, 0o755);
    const wrap = await wrappers();
    const all = process.env['TSBUILD_RUNTIME_TOOLS'] === 'all';
    const programs = tools.programs!.filter((p) => !NEVER_RUN.has(p) && (all || PROGRAMS.has(p)));
    for (const r of RUNTIMES) runs.set(r, []);
    const t0 = Date.now();
    try {
      await runAll(tools.dir, programs, wrap);
    } finally {
      for (const r of RUNTIMES) deleteLeftovers(r, wrap[r]);
    }
    // TSBUILD_RUNTIME_TOOLS_OUT=DIR keeps every program's output as DIR/<runtime>/<program>.{tap,err}
    const keep = process.env['TSBUILD_RUNTIME_TOOLS_OUT'];
    if (keep) {
      for (const r of RUNTIMES) {
        await mkdir(join(keep, r), { recursive: true });
        for (const run of runs.get(r)!) {
          await writeFile(join(keep, r, `${run.program}.tap`), run.stdout);
          await writeFile(join(keep, r, `${run.program}.err`), `exit ${run.exitCode}, ${run.ms} ms\n${run.stderr}`);
        }
      }
    }
    for (const r of RUNTIMES) {
      const m = new Map<string, TapPoint['result']>();
      for (const run of runs.get(r)!) for (const p of scoreTap(run.program, run.stdout, run.exitCode)) m.set(p.key, p.result);
      points.set(r, m);
    }
    const rows = RUNTIMES.map((r) => {
      const v = [...points.get(r)!.values()];
      const progs = runs.get(r)!;
      const okProgs = progs.filter((run) => scoreTap(run.program, run.stdout, run.exitCode).every((p) => p.result !== 'fail')).length;
      return `${r.padEnd(8)} points: ${v.filter((x) => x === 'pass').length} pass, ${v.filter((x) => x === 'fail').length} fail, ${v.filter((x) => x === 'skip').length} skip; programs without a failure: ${okProgs}/${progs.length}`;
    });
    const slow = RUNTIMES.flatMap((r) => runs.get(r)!.map((x) => ({ r, ...x }))).sort((a, b) => b.ms - a.ms).slice(0, 8).map((x) => `${x.r}/${x.program} ${(x.ms / 1000).toFixed(1)} s`);
    console.log(`runtime-tools ${version}, ${programs.length} programs, ${((Date.now() - t0) / 1000).toFixed(0)} s:\n${rows.join('\n')}\nslowest: ${slow.join(', ')}`);
  }, 20 * 60_000);

  afterAll(async () => {
    if (!work) return;
    for (const m of mountsUnder(work)) spawnSync('umount', ['-l', m]);
    removeTestCgroups();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  it('runs every program against crun and gets TAP from each', ({ skip: skipTest }) => {
    if (skip) {
      console.warn(`skip: ${skip}`);
      skipTest();
    }
    // the harness works: crun's core lifecycle programs printed TAP and crun passed most points
    const crun = runs.get('crun')!;
    expect(crun.length).toBeGreaterThanOrEqual(PROGRAMS.size - 1);
    const core = ['create', 'start', 'state', 'kill', 'delete', 'default', 'mounts', 'process'];
    expect(crun.filter((r) => core.includes(r.program) && !/^TAP version/m.test(r.stdout)).map((r) => `${r.program}: ${r.stderr.slice(0, 200)}`)).toEqual([]);
    expect([...points.get('crun')!.values()].filter((v) => v === 'pass').length).toBeGreaterThan(1000);
  });

  it('tsbuild passes every point crun passes, except the documented exceptions', ({ skip: skipTest }) => {
    if (skip) skipTest();
    const ts = points.get('tsbuild')!;
    const isException = (key: string): boolean => Object.keys(EXCEPTIONS).some((e) => key === e || key.startsWith(`${e}: `));
    const missing: string[] = [];
    for (const [key, result] of points.get('crun')!) {
      if (result !== 'pass' || ts.get(key) === 'pass' || isException(key)) continue;
      const prog = key.split(':')[0]!;
      const run = runs.get('tsbuild')!.find((r) => r.program === prog);
      missing.push(`${key} (tsbuild: ${ts.get(key) ?? 'absent'}; exit ${run?.exitCode}; ${(run?.stderr ?? '').trim().split('\n').slice(-2).join(' | ').slice(0, 300)})`);
    }
    expect(missing).toEqual([]);
  });
});
