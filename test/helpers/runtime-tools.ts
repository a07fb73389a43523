/**
 * The opencontainers/runtime-tools validation suite, built once per machine from the Go module
 * proxy with the machine's Go and kept under the test cache, next to the other Go tools:
 * `${TSBUILD_TEST_CACHE:-/var/cache/tsbuild-test}/go/bin/runtime-tools-<version>/` holds one binary
 * per `validation/<name>/` program plus `runtimetest` (the probe the programs copy into each bundle).
 *
 * runtime-tools has no go.mod (it vendored with Godeps), and the proxy serves only tagged versions
 * of most of its dependencies, not the commits Godeps pins; the closest tags are pinned below (the
 * runtime-spec the suite targets is v1.0.2, the version of its `specs-go` API it was written for).
 *
 * A program expects, in its working directory, `runtimetest` and `rootfs-<GOARCH>.tar.gz` (a busybox
 * root filesystem; made here offline from the shared busybox rootfs, with relative applet links so
 * that hooks naming `<bundle>/rootfs/bin/sh` run the bundle's busybox from the host too). It runs
 * `$RUNTIME create|start|state|kill|delete` and prints TAP.
 *
 * Set TSBUILD_TEST_GO_TOOLS=0 to never build (tests then skip with that reason).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs, makeCachedDir } from './base-images.js';
import { goBinary, goCacheRoot } from './go-tools.js';

/** The runtime-tools release the suite is built from (the newest the module proxy serves). */
export const RUNTIME_TOOLS_VERSION = 'v0.9.0';

const MODULE = 'github.com/opencontainers/runtime-tools';

/** go.mod of the build module: runtime-tools plus the tags closest to its Godeps pins. */
const GO_MOD = `module tsbuildtest/runtimetools

go 1.21

require (
	${MODULE} ${RUNTIME_TOOLS_VERSION}
	github.com/blang/semver v3.5.0+incompatible
	github.com/hashicorp/errwrap v1.0.0
	github.com/hashicorp/go-multierror v1.0.0
	github.com/mndrix/tap-go v0.0.0-20171203230836-629fa407e90b
	github.com/mrunalp/fileutils v0.5.0
	github.com/opencontainers/runtime-spec v1.0.2
	github.com/opencontainers/selinux v1.6.0
	github.com/satori/go.uuid v1.1.0
	github.com/sirupsen/logrus v1.0.4
	github.com/syndtr/gocapability v0.0.0-20200815063812-42c35b437635
	github.com/urfave/cli v1.22.17
	github.com/xeipuuv/gojsonpointer v0.0.0-20190905194746-02993c407bfb
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415
	github.com/xeipuuv/gojsonschema v1.1.0
)
`;

/** The result of {@link runtimeTools}: the directory of built programs, or why there is none. */
export interface RuntimeToolsResult {
  readonly dir?: string;
  readonly version?: string;
  /** Every validation program built (binary names = `validation/<name>`), sorted. */
  readonly programs?: readonly string[];
  readonly skip?: string;
}

/**
 * Go's caches live in the build's own temp dir, removed with it: the shared ones under the test
 * cache are dropped by other test runs (dropGoBuildCaches) at any moment, which would break a
 * build in progress; and nothing is left to drop afterwards.
 */
function goEnv(scratch: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOPATH: join(scratch, 'gopath'),
    GOMODCACHE: join(scratch, 'modcache'),
    GOCACHE: join(scratch, 'cache'),
    GOTOOLCHAIN: 'local',
    CGO_ENABLED: '0',
    GOFLAGS: '-mod=mod -buildvcs=false',
  };
}

function go(goBin: string, args: string[], cwd: string, scratch: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(goBin, args, { cwd, env: goEnv(scratch), timeout: 30 * 60_000, maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`go ${args.join(' ')} failed: ${err.message}\n${stderr.split('\n').slice(-30).join('\n')}`, { cause: err }));
      else resolve();
    });
  });
}

async function buildInto(goBin: string, out: string): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'tsbuild-runtime-tools-'));
  const mod = join(scratch, 'mod');
  try {
    await mkdir(mod);
    await writeFile(join(mod, 'go.mod'), GO_MOD);
    await mkdir(out, { recursive: true });
    // one `go build` for every program: the packages compile once, each main links into out/
    await go(goBin, ['build', '-trimpath', '-ldflags=-s -w', '-o', `${out}/`, `${MODULE}/validation/...`, `${MODULE}/cmd/runtimetest`], mod, scratch);
  } finally {
    // the module cache is read-only (0444 dirs): make it removable first
    await go(goBin, ['clean', '-modcache'], mod, scratch).catch(() => {});
    await rm(scratch, { recursive: true, force: true });
  }
}

function listPrograms(dir: string): string[] {
  return readdirSync(dir).filter((n) => n !== 'runtimetest' && statSync(join(dir, n)).isFile()).sort();
}

/** A failed build is retried after this long (the proxy may have been down). */
const FAILED_TTL_MS = 24 * 3600_000;

let inProcess: Promise<RuntimeToolsResult> | undefined;

async function build(): Promise<RuntimeToolsResult> {
  if (process.env['TSBUILD_TEST_GO_TOOLS'] === '0') return { skip: 'runtime-tools: TSBUILD_TEST_GO_TOOLS=0' };
  const binRoot = join(goCacheRoot(), 'bin');
  const name = `runtime-tools-${RUNTIME_TOOLS_VERSION}`;
  const final = join(binRoot, name);
  if (existsSync(join(final, 'runtimetest'))) return { dir: final, version: RUNTIME_TOOLS_VERSION, programs: listPrograms(final) };
  const goBin = goBinary();
  if (!goBin) return { skip: `runtime-tools: no Go toolchain (/usr/local/go/bin/go or go on PATH) to build ${MODULE}` };
  await mkdir(binRoot, { recursive: true });
  const failed = join(binRoot, `${name}.failed`);
  const st = statSync(failed, { throwIfNoEntry: false });
  if (st && Date.now() - st.mtimeMs < FAILED_TTL_MS) return { skip: `runtime-tools: an earlier build failed: ${(await readFile(failed, 'utf8')).split('\n')[0]}` };
  try {
    const dir = await makeCachedDir(binRoot, name, (tmp) => buildInto(goBin, tmp));
    return { dir, version: RUNTIME_TOOLS_VERSION, programs: listPrograms(dir) };
  } catch (e) {
    const msg = (e as Error).message;
    await writeFile(failed, msg).catch(() => {});
    return { skip: `runtime-tools: could not build ${MODULE}@${RUNTIME_TOOLS_VERSION}: ${msg.split('\n')[0]}` };
  }
}

/**
 * The built validation programs (building them the first time: about a minute on 2 cores), or a
 * skip reason, also printed with console.warn. Never throws. Go's caches of the build are removed
 * with it; only the binaries (about 400 MB) stay.
 */
export function runtimeTools(): Promise<RuntimeToolsResult> {
  inProcess ??= build()
    .catch((e: unknown): RuntimeToolsResult => ({ skip: `runtime-tools: ${(e as Error).message}` }))
    .then((r) => {
      if (r.skip) console.warn(`skip: ${r.skip}`);
      return r;
    });
  return inProcess;
}

function sh(cmd: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: 120_000, maxBuffer: 16 << 20 }, (err, _o, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`, { cause: err })) : resolve()));
  });
}

/**
 * A working directory for the validation programs: `runtimetest` from `tools` and
 * `rootfs-amd64.tar.gz` (busybox: bin/busybox with a relative link per applet, etc/, tmp/, the
 * empty mount points). The caller removes it.
 */
export async function runtimeToolsWorkDir(tools: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-rtval-'));
  await copyFile(join(tools, 'runtimetest'), join(work, 'runtimetest'));
  const src = await busyboxRootfs();
  const root = join(work, 'rootfs-src');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'dev', 'proc', 'sys', 'tmp', 'root', 'home', 'var']) await mkdir(join(root, d), { recursive: true });
  await copyFile(join(src, 'bin', 'busybox'), join(root, 'bin', 'busybox'));
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin']) {
    for (const n of await readdir(join(src, d)).catch(() => [] as string[])) {
      const p = join(src, d, n);
      if (n === 'busybox' || !(await lstat(p)).isSymbolicLink()) continue;
      if ((await readlink(p)) !== '/bin/busybox') continue;
      const up = d.split('/').map(() => '..').join('/');
      await symlink(d === 'bin' ? 'busybox' : `${up}/bin/busybox`, join(root, d, n));
    }
  }
  for (const f of ['passwd', 'group']) if (existsSync(join(src, 'etc', f))) await copyFile(join(src, 'etc', f), join(root, 'etc', f));
  await sh('chmod', ['1777', join(root, 'tmp')]);
  await sh('tar', ['-czf', join(work, 'rootfs-amd64.tar.gz'), '--owner=0', '--group=0', '-C', root, '.']);
  await rm(root, { recursive: true, force: true });
  return work;
}

/** One TAP test point of a validation program, keyed `<program>: <description>[ #n]`. */
export interface TapPoint {
  readonly key: string;
  readonly result: 'pass' | 'fail' | 'skip';
}

/**
 * Scores one program's run. TAP points (`ok`/`not ok`, `# SKIP`) count one by one, keyed by
 * description (the n-th repeat of a description gets ` #n`). Two program-level rules, because
 * runtime-tools v0.9.0 reports some outcomes outside TAP points:
 * - a program that exited non-zero aborted (util.Fatal): it is ONE failing point `<program>`,
 *   whatever points the in-container probe printed before (the `*_fail` programs print the probe's
 *   points, then fail because the runtime accepted an invalid config);
 * - a program that printed no point (`1..0`, the hook programs; or nothing at all, the `*_fail`
 *   programs when the runtime rightly refuses the config) passes iff it printed no `error`
 *   diagnostic.
 */
export function scoreTap(program: string, stdout: string, exitCode: number): TapPoint[] {
  if (exitCode !== 0) return [{ key: program, result: 'fail' }];
  const seen = new Map<string, number>();
  const out: TapPoint[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(not ok|ok)\b\s*\d*\s*(?:- )?(.*)$/.exec(line);
    if (!m) continue;
    const skip = /#\s*skip/i.test(m[2]!);
    const desc = m[2]!.replace(/\s*#\s*skip.*$/i, '');
    const n = (seen.get(desc) ?? 0) + 1;
    seen.set(desc, n);
    out.push({ key: `${program}: ${desc}${n > 1 ? ` #${n}` : ''}`, result: skip ? 'skip' : m[1] === 'ok' ? 'pass' : 'fail' });
  }
  if (out.length === 0) out.push({ key: program, result: /"error":/.test(stdout) ? 'fail' : 'pass' });
  return out;
}

/** What one program run left. */
export interface ProgramRun {
  readonly program: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs one validation program with `RUNTIME=runtime` in `work` (TMPDIR=`tmp`: the bundles the
 * programs make, and sometimes leave, go there); a program past `timeoutMs` is killed (counted as
 * exit 124).
 */
export function runProgram(tools: string, program: string, runtime: string, work: string, tmp: string, timeoutMs: number): Promise<ProgramRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(join(tools, program), [], { cwd: work, env: { ...process.env, RUNTIME: runtime, TMPDIR: tmp }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 124) : 0;
      resolve({ program, exitCode: code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - t0 });
    });
  });
}
