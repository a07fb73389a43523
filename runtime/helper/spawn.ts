import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';
import { RuntimeError } from '../errors.js';
import { FrameDecoder, encodeMessage, type ConfigMessage, type HelperMessage, type ToHelper } from './protocol.js';

/** One stdio slot of the container's first process. */
export type StdioSlot = 'inherit' | 'pipe' | 'null' | number;

/** Options of {@link spawnHelper}. */
export interface SpawnHelperOptions {
  /** The config message (without `kind`). */
  readonly config: Omit<ConfigMessage, 'kind'>;
  readonly stdin?: StdioSlot;
  readonly stdout?: StdioSlot;
  readonly stderr?: StdioSlot;
  /** Start the helper in its own session (setsid) so it outlives the caller. */
  readonly detached?: boolean;
  /** Path of tsbuild-helper; default $TSBUILD_HELPER, else native/build/tsbuild-helper of this checkout. */
  readonly helperPath?: string;
  /**
   * Called on a mapping-request with the child's host pid; must write /proc/PID/{uid,gid}_map.
   * `mappingWritten()` is then sent automatically. Without it the caller answers itself.
   */
  readonly onMappingRequest?: (pid: number) => Promise<void>;
  /**
   * Called on a hooks-request (the spec has prestart, createRuntime, createContainer or
   * startContainer hooks) with the child's host pid: runs the prestart and createRuntime hooks on
   * the host and returns the state texts for the container-side hooks; `hooks-done` is then sent.
   * A rejection fails the setup (step `hooks`) and kills the helper. Without it, the request is
   * answered with empty states at once.
   */
  readonly onHooksRequest?: (pid: number) => Promise<{ state: string; startState: string }>;
}

/** The exit of the container's first process as the helper reported it. */
export interface HelperExit {
  exitCode: number;
  signal?: string;
}

/** Where the built helper lives: $TSBUILD_HELPER, else native/build/ of this checkout (from src or dist). */
export function defaultHelperPath(): string {
  if (process.env.TSBUILD_HELPER) return process.env.TSBUILD_HELPER;
  for (const rel of ['../../native/build/tsbuild-helper', '../../../native/build/tsbuild-helper']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  return fileURLToPath(new URL('../../native/build/tsbuild-helper', import.meta.url));
}

/** ": no such file or directory (ENOENT)" for an errno number, or '' for 0. */
function describeErrno(errno: number): string {
  if (!errno) return '';
  const e = getSystemErrorMap().get(-errno);
  return e ? `: ${e[1]} (${e[0]})` : `: errno ${errno}`;
}

function slot(s: StdioSlot | undefined): 'inherit' | 'pipe' | 'ignore' | number {
  return s === undefined ? 'inherit' : s === 'null' ? 'ignore' : s;
}

interface Observed {
  pid?: number;
  created?: { droppedCapabilities: string[] };
  started?: boolean;
  error?: RuntimeError;
  exit?: HelperExit;
  closed?: boolean;
}

/**
 * A running tsbuild-helper: the container's monitor process. The verbs wrap the protocol
 * (youki's channel, crun's sync socket); each rejects with the helper's RuntimeError when the
 * setup fails before the awaited point. Call order: waitForPid → (mappingWritten) → waitReady
 * → start → waitExit.
 */
export class HelperProcess {
  /** The helper process (its pid is the monitor's, not the container's). */
  readonly child: ChildProcess;
  private readonly sock: Socket;
  private readonly seen: Observed = {};
  private readonly waiters = new Set<() => void>();
  private readonly decoder = new FrameDecoder();
  private readonly opts: SpawnHelperOptions;

  /** Use {@link spawnHelper}. */
  constructor(child: ChildProcess, opts: SpawnHelperOptions) {
    this.child = child;
    this.opts = opts;
    this.sock = child.stdio[3] as Socket;
    this.sock.on('data', (chunk: Buffer) => {
      let msgs: HelperMessage[];
      try {
        msgs = this.decoder.push(chunk);
      } catch (e) {
        this.seen.error ??= new RuntimeError('HELPER_FAILED', 'reading the helper protocol', { cause: e });
        this.sock.destroy();
        this.notify();
        return;
      }
      for (const m of msgs) this.handle(m);
    });
    this.sock.on('error', () => {});
    this.sock.on('close', () => {
      this.seen.closed = true;
      this.notify();
    });
    child.on('error', (e) => {
      this.seen.error ??= new RuntimeError('HELPER_FAILED', `starting the helper ${opts.helperPath ?? ''}`.trim(), { cause: e });
      this.seen.closed = true;
      this.notify();
    });
    child.on('exit', (code, signal) => {
      if (!this.seen.exit && !this.seen.error && code !== 0) {
        this.seen.error = new RuntimeError('HELPER_FAILED', `the helper exited with ${signal ?? `status ${code}`} before reporting`);
      }
      this.seen.closed = true;
      this.notify();
    });
  }

  private handle(m: HelperMessage): void {
    switch (m.kind) {
      case 'pid':
        this.seen.pid = m.pid;
        break;
      case 'mapping-request':
        if (this.opts.onMappingRequest) {
          this.opts.onMappingRequest(m.pid).then(
            () => this.mappingWritten(),
            (e: unknown) => {
              this.seen.error ??= new RuntimeError('SETUP_FAILED', `writing the uid/gid maps of ${m.pid}`, { cause: e, step: 'userns-map' });
              this.kill('SIGKILL');
              this.notify();
            },
          );
        }
        break;
      case 'hooks-request': {
        const run = this.opts.onHooksRequest ?? (async () => ({ state: '', startState: '' }));
        run(m.pid).then(
          (st) => this.send({ kind: 'hooks-done', ...st }),
          (e: unknown) => {
            this.seen.error ??= e instanceof RuntimeError ? e : new RuntimeError('SETUP_FAILED', `running the hooks of ${m.pid}`, { cause: e, step: 'hooks' });
            this.kill('SIGKILL');
            this.notify();
          },
        );
        break;
      }
      case 'created':
        this.seen.created = { droppedCapabilities: m.droppedCapabilities };
        break;
      case 'started':
        this.seen.started = true;
        break;
      case 'error':
        this.seen.error ??= new RuntimeError(m.step === 'exec' ? 'EXEC_FAILED' : 'SETUP_FAILED', `${m.step}: ${m.message}${describeErrno(m.errno)}`, { step: m.step, errno: m.errno });
        break;
      case 'exit':
        this.seen.exit = { exitCode: m.exitCode, ...(m.signal ? { signal: m.signal } : {}) };
        break;
    }
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitFor<T>(pick: (s: Observed) => T | undefined, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        // A setup error wins over anything after it (the child's exit 127 follows an error).
        const v = pick(this.seen);
        if (this.seen.error) {
          this.waiters.delete(check);
          reject(this.seen.error);
        } else if (v !== undefined) {
          this.waiters.delete(check);
          resolve(v);
        } else if (this.seen.closed && (this.child.exitCode !== null || this.child.signalCode !== null)) {
          this.waiters.delete(check);
          reject(new RuntimeError('HELPER_FAILED', `the helper ended before ${what}`));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  private send(m: ToHelper): void {
    if (!this.sock.destroyed) this.sock.write(encodeMessage(m));
  }

  /** The container's first process, as a host pid. */
  waitForPid(): Promise<number> {
    return this.waitFor((s) => s.pid, 'reporting the container pid');
  }

  /** Tells the child its uid/gid maps are written (answer to a mapping-request). */
  mappingWritten(): void {
    this.send({ kind: 'mapping-written' });
  }

  /** Resolves when the setup is done and the child waits for start (or execs, without waitStart). */
  waitReady(): Promise<{ droppedCapabilities: string[] }> {
    return this.waitFor((s) => s.created, 'the container was created');
  }

  /**
   * Releases a container created with waitStart and no exec fifo, and resolves once its
   * process.args were executed (rejects with EXEC_FAILED and the errno otherwise).
   */
  async start(): Promise<void> {
    this.send({ kind: 'start' });
    await this.waitStarted();
  }

  /** Resolves once execve of process.args succeeded. */
  waitStarted(): Promise<void> {
    return this.waitFor((s) => (s.started ? true : undefined), 'the process was started').then(() => undefined);
  }

  /** The exit of the container's first process (the helper exits right after). */
  waitExit(): Promise<HelperExit> {
    return this.waitFor((s) => s.exit, 'the container exited');
  }

  /** The setup error, if the helper reported one. */
  get error(): RuntimeError | undefined {
    return this.seen.error;
  }

  /** Signals the monitor (which forwards SIGTERM/SIGINT/... to the container). */
  kill(signal: NodeJS.Signals | number): void {
    try {
      this.child.kill(signal);
    } catch {
      /* already gone */
    }
  }

  /** Lets the calling process exit while the helper keeps monitoring the container. */
  detach(): void {
    this.sock.destroy();
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

/**
 * Starts tsbuild-helper with a unix socket on fd 3 (Node makes a socketpair for a 'pipe' slot)
 * and sends the config message. The caller then drives it through the returned verbs.
 */
export function spawnHelper(opts: SpawnHelperOptions): HelperProcess {
  const path = opts.helperPath ?? defaultHelperPath();
  if (!existsSync(path)) throw new RuntimeError('HELPER_NOT_FOUND', `the native helper ${path} is missing (run npm run build)`);
  const stdio: StdioOptions = [slot(opts.stdin), slot(opts.stdout), slot(opts.stderr), 'pipe'];
  const child = spawn(path, [], { stdio, detached: opts.detached ?? false, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const h = new HelperProcess(child, { ...opts, helperPath: path });
  (child.stdio[3] as Socket).write(encodeMessage({ kind: 'config', ...opts.config }));
  return h;
}
