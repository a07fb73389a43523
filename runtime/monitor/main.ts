/**
 * The monitor of one detached container: `node main.js ROOT ID [--wait]`, started by `tsbuild run -d`
 * in its own session with a pipe on fd 3. It creates and starts the container through the
 * native helper (which stays the container's parent), reports `{"ok":true}` or the error as
 * one JSON line on fd 3, writes the container's stdout/stderr to the json-file log, runs its
 * healthcheck, serves attach and restart on its control socket (control.ts), applies the
 * restart policy after each exit, and finally records the exit in status.json, releases the
 * rootfs mount, the network and the cgroup, and with --rm removes the container. Then it exits.
 */
import { createWriteStream, existsSync, promises as fsp } from 'node:fs';
import { createServer, Socket as NetSocket, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { cgroupManagerFromPaths } from '../cgroups/manager.js';
import { createContainer, type Container } from '../container/container.js';
import {
  exitCodeOf, lockRecord, ownedStatus, readRecord, recordPaths, releaseResources, removeRecord, writeStatus,
  type ContainerRecord, type StatusRecord,
} from '../container/records.js';
import { CONTROL_SOCKET, encodeFrame, FRAME_EXIT, FRAME_STDERR, FRAME_STDOUT, STOP_MARKER } from './control.js';
import { startHealthchecks, type HealthLoop } from '../health/loop.js';
import { JsonLogWriter } from './json-log.js';
import { RestartManager } from './restart.js';

function report(msg: Record<string, unknown>): void {
  try {
    const s = createWriteStream('', { fd: 3 });
    s.on('error', () => undefined);
    s.end(`${JSON.stringify(msg)}\n`);
  } catch {
    /* the CLI is gone */
  }
}

function errorReport(e: unknown): Record<string, unknown> {
  const err = e as { code?: string; message?: string; step?: string; errno?: string };
  return { ok: false, code: err.code ?? 'HELPER_FAILED', message: err.message ?? String(e), ...(err.step ? { step: err.step } : {}), ...(err.errno ? { errno: err.errno } : {}) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One run of the container's process. */
interface Run {
  c: Container;
  startedAt: number;
  stdin?: Writable;
  /** Resolve when its stdout and stderr reached their end in the log. */
  piped: Promise<void>[];
}

/** An attach session: a client that gets the output frames and may feed stdin. */
interface Session {
  sock: Socket;
  stdin: boolean;
}

class Monitor {
  private readonly p: ReturnType<typeof recordPaths>;
  private status: StatusRecord = ownedStatus('created');
  private writes: Promise<void> = Promise.resolve();
  private run: Run | undefined;
  private readonly sessions = new Set<Session>();
  private server: Server | undefined;
  /** A `restart` request waiting for the next run to start. */
  private manualRestart: ((r: Record<string, unknown>) => void) | undefined;
  /** Wakes the restart backoff early (a restart request or a stop). */
  private wake: (() => void) | undefined;
  private health: HealthLoop | undefined;
  private readonly restarts: RestartManager;

  constructor(private readonly root: string, private readonly rec: ContainerRecord, private readonly log: JsonLogWriter) {
    this.p = recordPaths(root, rec.id);
    this.restarts = new RestartManager(rec.restartPolicy ?? { Name: 'no', MaximumRetryCount: 0 });
  }

  /** Writes status.json (serialised: every write replaces the whole record). */
  private persist(next: StatusRecord): Promise<void> {
    this.status = next;
    this.writes = this.writes.then(() => writeStatus(this.root, this.rec.id, next)).catch(() => undefined);
    return this.writes;
  }

  private broadcast(kind: number, data: Buffer): void {
    if (!this.sessions.size) return;
    const frame = encodeFrame(kind, data);
    for (const s of this.sessions) if (!s.sock.destroyed) s.sock.write(frame);
  }

  private endSessions(exitCode: number): void {
    const frame = encodeFrame(FRAME_EXIT, Buffer.from(JSON.stringify({ exitCode })));
    for (const s of this.sessions) s.sock.end(frame);
    this.sessions.clear();
  }

  /** Serves the control socket (attach, restart). */
  async listen(): Promise<void> {
    const dirFd = await fsp.open(this.p.dir, 'r');
    await fsp.rm(join(this.p.dir, CONTROL_SOCKET), { force: true });
    const server = createServer((sock) => this.onClient(sock));
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // through the directory fd: a long store root would pass sun_path's 108 bytes
      server.listen(`/proc/self/fd/${dirFd.fd}/${CONTROL_SOCKET}`, () => resolve());
    }).finally(() => dirFd.close());
    server.unref();
    this.server = server;
  }

  close(): void {
    this.server?.close();
  }

  private onClient(sock: Socket): void {
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 4096) sock.destroy();
        return;
      }
      sock.off('data', onData);
      let req: { op?: string; stdin?: boolean; timeout?: number } = {};
      try {
        req = JSON.parse(buf.subarray(0, nl).toString('utf8')) as typeof req;
      } catch {
        /* answered below */
      }
      const rest = buf.subarray(nl + 1);
      if (req.op === 'attach') this.attach(sock, !!req.stdin, rest);
      else if (req.op === 'restart') this.restartRequest(sock, typeof req.timeout === 'number' ? req.timeout : 10);
      else sock.end(`${JSON.stringify({ ok: false, message: `unknown request ${JSON.stringify(req.op ?? '')}` })}\n`);
    };
    sock.on('data', onData);
  }

  private attach(sock: Socket, wantStdin: boolean, rest: Buffer): void {
    const run = this.run;
    if (!run || this.status.status !== 'running' && this.status.status !== 'paused') {
      sock.end(`${JSON.stringify({ ok: false, message: `container ${this.rec.name} is ${this.status.status}, not running` })}\n`);
      return;
    }
    const stdin = wantStdin && !!this.rec.openStdin;
    const session: Session = { sock, stdin };
    sock.write(`${JSON.stringify({ ok: true, tty: this.rec.tty, stdin })}\n`);
    this.sessions.add(session);
    const toStdin = (b: Buffer) => {
      if (session.stdin) this.run?.stdin?.write(b);
    };
    if (rest.length) toStdin(rest);
    sock.on('data', toStdin);
    sock.on('close', () => this.sessions.delete(session));
  }

  private restartRequest(sock: Socket, timeoutSec: number): void {
    if (this.manualRestart) {
      sock.end(`${JSON.stringify({ ok: false, message: `container ${this.rec.name} is already restarting` })}\n`);
      return;
    }
    this.manualRestart = (r) => sock.end(`${JSON.stringify(r)}\n`);
    void fsp.rm(join(this.p.dir, STOP_MARKER), { force: true });
    const run = this.run;
    if (!run) {
      this.wake?.();
      return;
    }
    void (async () => {
      const c = run.c;
      if (timeoutSec > 0 && this.status.status === 'running') {
        await c.kill(this.rec.stopSignal as NodeJS.Signals).catch(() => undefined);
        for (let t = 0; t < timeoutSec * 1000 && this.run === run; t += 50) await sleep(50);
      }
      if (this.run === run) await c.kill('SIGKILL').catch(() => undefined);
    })();
  }

  /** Creates and starts one run; throws the helper's error. */
  private async start(): Promise<Run> {
    const { rec } = this;
    const cgroup = rec.cgroup ? cgroupManagerFromPaths(rec.cgroupName, rec.cgroup.version, rec.cgroup.paths) : undefined;
    const c = await createContainer({
      id: rec.id, bundle: this.p.dir, stateRoot: this.p.runState, ...(cgroup ? { cgroup, cgroupName: rec.cgroupName } : {}),
      init: rec.init,
      io: { stdin: rec.openStdin ? 'pipe' : 'null', stdout: 'pipe', stderr: 'pipe' },
    });
    // read the output before start: once the helper exits, Node discards what nobody reads
    const piped: Promise<void>[] = [];
    for (const [name, kind] of [['stdout', FRAME_STDOUT], ['stderr', FRAME_STDERR]] as const) {
      const r = c.stdio?.[name];
      if (!r) continue;
      piped.push(this.log.pipe(r, name));
      r.on('data', (chunk: string | Buffer) => this.broadcast(kind, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk));
    }
    try {
      await c.start();
    } catch (e) {
      await c.delete({ force: true }).catch(() => undefined);
      throw e;
    }
    const run: Run = { c, startedAt: Date.now(), piped, ...(c.stdio?.stdin ? { stdin: c.stdio.stdin } : {}) };
    run.stdin?.on('error', () => undefined);
    return run;
  }

  /** The container's life: runs, restarts per policy or request, until it is over. Resolves with the last exit. */
  async main(): Promise<{ result?: { exitCode: number; signal?: string }; error?: string }> {
    const { rec, root } = this;
    let first = true;
    let result: { exitCode: number; signal?: string } | undefined;
    let error: string | undefined;
    await fsp.rm(join(this.p.dir, STOP_MARKER), { force: true });
    await this.persist(ownedStatus('created'));
    for (;;) {
      let run: Run;
      try {
        run = await this.start();
      } catch (e) {
        if (first) throw e;
        error = (e as Error).message;
        this.manualRestart?.({ ok: false, message: error });
        this.manualRestart = undefined;
        break;
      }
      this.run = run;
      const pid = (await run.c.state().catch(() => undefined))?.pid;
      const startedAt = new Date(run.startedAt);
      await this.persist(ownedStatus('running', {
        ...(pid ? { pid } : {}), startedAt: startedAt.toISOString(),
        ...(this.restarts.count ? { restartCount: this.restarts.count } : {}),
        ...(rec.healthcheck ? { health: { Status: 'starting', FailingStreak: 0, Log: [] } } : {}),
      }));
      if (first) report({ ok: true, ...(pid ? { pid } : {}) });
      first = false;
      this.manualRestart?.({ ok: true, ...(pid ? { pid } : {}) });
      this.manualRestart = undefined;
      if (rec.healthcheck) {
        const hc = rec.healthcheck;
        this.health = startHealthchecks({
          runState: this.p.runState, id: rec.id, dir: this.p.dir, healthcheck: hc, startedAt,
          onState: (health) => {
            if (this.run === run && this.status.status === 'running') void this.persist({ ...this.status, health });
          },
        });
      }
      try {
        result = await run.c.wait();
        error = undefined;
      } catch (e) {
        result = undefined;
        error = (e as Error).message;
      }
      await this.health?.stop();
      this.health = undefined;
      await Promise.race([Promise.all(run.piped), new Promise((r) => setTimeout(r, 2000).unref())]);
      const code = result ? exitCodeOf(result) : 255;
      this.endSessions(code);
      this.run = undefined;
      const stopped = existsSync(join(this.p.dir, STOP_MARKER));
      let delayMs = 0;
      if (this.manualRestart) {
        delayMs = 0;
      } else {
        const d = this.restarts.next(code, Date.now() - run.startedAt, stopped);
        if (!d.restart) break;
        delayMs = d.delayMs;
      }
      // the next run reuses the rootfs mount and the network; only the runtime state and cgroup go
      await run.c.delete({ force: true }).catch(() => undefined);
      await this.persist(ownedStatus('restarting', {
        ...(pid ? { pid } : {}), startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), exitCode: code,
        ...(result?.signal ? { signal: result.signal } : {}), ...(this.restarts.count ? { restartCount: this.restarts.count } : {}),
        ...(this.status.health ? { health: this.status.health } : {}),
      }));
      if (!this.manualRestart && !(await this.backoff(delayMs))) break;
    }
    this.close();
    return { ...(result ? { result } : {}), ...(error ? { error } : {}) };
  }

  /** Waits `ms` before a restart; false when a stop came meanwhile. */
  private async backoff(ms: number): Promise<boolean> {
    const marker = join(this.p.dir, STOP_MARKER);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (this.manualRestart) return true;
      if (existsSync(marker)) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(50, until - Date.now()));
        this.wake = () => { clearTimeout(t); r(); };
      });
      this.wake = undefined;
    }
    return !existsSync(marker) || !!this.manualRestart;
  }

  /** The final record: exited (or removed with --rm), resources released. */
  async finish(last: { result?: { exitCode: number; signal?: string }; error?: string }): Promise<void> {
    const { root, rec } = this;
    await this.writes;
    const release = await lockRecord(root, rec.id);
    try {
      const prev = this.status;
      await releaseResources(root, rec);
      await fsp.rm(join(this.p.dir, CONTROL_SOCKET), { force: true });
      if (rec.autoRemove) {
        await removeRecord(root, rec);
      } else {
        await fsp.rm(join(this.p.dir, STOP_MARKER), { force: true });
        await writeStatus(root, rec.id, {
          status: 'exited', ...(prev.pid ? { pid: prev.pid } : {}), ...(prev.startedAt ? { startedAt: prev.startedAt } : {}),
          finishedAt: new Date().toISOString(), exitCode: last.result ? exitCodeOf(last.result) : 255,
          ...(last.result?.signal ? { signal: last.result.signal } : {}), ...(last.error ? { error: last.error } : {}),
          ...(prev.restartCount ? { restartCount: prev.restartCount } : {}), ...(prev.health ? { health: prev.health } : {}),
        });
      }
    } finally {
      await release().catch(() => undefined);
    }
  }
}

/**
 * `--wait`: started ahead of the container's setup, the monitor waits for one byte on fd 4;
 * the pipe's end without it (the run failed or was cancelled) means there is nothing to do.
 */
function waitForGo(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new NetSocket({ fd: 4, readable: true, writable: false });
    s.once('data', () => { s.destroy(); resolve(true); });
    s.once('end', () => { s.destroy(); resolve(false); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

async function main(root: string, id: string, wait: boolean): Promise<number> {
  if (wait && !(await waitForGo())) return 0;
  const rec = await readRecord(root, id);
  if (!rec) {
    report({ ok: false, code: 'CONTAINER_NOT_FOUND', message: `container ${id} has no record` });
    return 1;
  }
  const log = await JsonLogWriter.open(recordPaths(root, id).log, rec.logRotation);
  const m = new Monitor(root, rec, log);
  let last: Awaited<ReturnType<Monitor['main']>>;
  try {
    await m.listen();
    last = await m.main();
  } catch (e) {
    // not started: the run command reports the error and removes everything
    report(errorReport(e));
    m.close();
    await log.close().catch(() => undefined);
    return 1;
  }
  await log.close().catch(() => undefined);
  await m.finish(last);
  return last.result ? 0 : 1;
}

const [root, id, flag] = process.argv.slice(2);
process.title = `tsbuild-monitor ${id?.slice(0, 12) ?? ''}`;
for (const s of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(s, () => undefined);
if (!root || !id) {
  process.stderr.write('usage: main.js ROOT ID\n');
  process.exitCode = 2;
} else {
  main(root, join(id), flag === '--wait').then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      process.stderr.write(`tsbuild-monitor: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
