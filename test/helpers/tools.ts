/**
 * Process and temp-dir helpers for tests: run the BUILT CLI (dist/src/cli/main.js, as users run it),
 * run any command and collect its output, and make temp dirs that are removed afterwards.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The built CLI entry point. */
export const TSBUILD_MAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** What a finished process left: exit code (128+n when killed by signal n), signal, outputs. */
export interface RunResult {
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Written to stdin, which is then closed; stdin is /dev/null when absent. */
  readonly input?: string | Buffer;
  /** Merged over process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Kills the process (SIGKILL) after this many ms; default 120 000. */
  readonly timeout?: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** Runs `cmd args` to completion and returns its exit code and outputs; never throws on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`spawning ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // the child may exit without reading
      child.stdin.end(opts.input);
    }
  });
}

/** Options of {@link runTsbuild}. */
export interface TsbuildOptions extends RunOptions {
  /** Store root, passed as `--root` before the arguments. */
  readonly root?: string;
}

/**
 * Runs the built CLI: `node dist/src/cli/main.js [--root ROOT] args...`. Throws if the build is
 * missing (.ci/setup builds it); a non-zero exit is returned, not thrown.
 */
export function runTsbuild(args: readonly string[], opts: TsbuildOptions = {}): Promise<RunResult> {
  if (!existsSync(TSBUILD_MAIN)) throw new Error(`${TSBUILD_MAIN} is missing: run npm run build`);
  const full = opts.root ? ['--root', opts.root, ...args] : [...args];
  return run(process.execPath, [TSBUILD_MAIN, ...full], opts);
}

/** Like {@link runTsbuild} but throws, with both outputs in the message, unless the exit code is 0. */
export async function tsbuildOk(args: readonly string[], opts: TsbuildOptions = {}): Promise<RunResult> {
  const r = await runTsbuild(args, opts);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const temps = new Set<string>();

/** Makes a fresh temp dir (under the OS temp dir) and remembers it for {@link removeTempDirs}. */
export async function makeTempDir(prefix = 'tsbuild-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.add(d);
  return d;
}

/** Removes every dir made by {@link makeTempDir} in this process (call from afterAll/afterEach). */
export async function removeTempDirs(): Promise<void> {
  const all = [...temps];
  temps.clear();
  await Promise.all(all.map((d) => rm(d, { recursive: true, force: true, maxRetries: 3 })));
}

/** Runs `fn` with a fresh temp dir and removes the dir afterwards, whatever `fn` does. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const d = await mkdtemp(join(tmpdir(), prefix ?? 'tsbuild-test-'));
  try {
    return await fn(d);
  } finally {
    await rm(d, { recursive: true, force: true, maxRetries: 3 });
  }
}
