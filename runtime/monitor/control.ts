/**
 * The monitor's control socket, `<root>/containers/<id>/monitor.sock` (a unix socket reached
 * through `/proc/self/fd/N/` of the directory, so long store roots stay under the 108-byte
 * sun_path limit). A client sends one JSON line:
 *
 * - `{"op":"attach","stdin":true|false}`: the monitor answers `{"ok":true,"tty":bool,"stdin":bool}`,
 *   then sends frames of the container's output, `[kind u8][length u32 BE][payload]`, kind 1 =
 *   stdout, 2 = stderr, 3 = the exit as JSON `{"exitCode":N}` (then it ends the stream). With
 *   stdin, every byte the client sends after its request goes to the container's stdin.
 * - `{"op":"restart","timeout":seconds}`: the monitor stops the container's process (STOPSIGNAL,
 *   SIGKILL after the timeout) and starts it again in the same container (rootfs, network,
 *   volumes and log kept); answers `{"ok":true,"pid":N}` once it runs, or `{"ok":false,"message"}`.
 *
 * `stop` and `rm -f` leave a `stop-requested` file next to the socket first: the monitor then
 * does not apply the restart policy to the exit that follows.
 */
import { closeSync, constants as fsc, openSync, promises as fsp } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { RuntimeError } from '../errors.js';

/** Name of the control socket in the container's record directory. */
export const CONTROL_SOCKET = 'monitor.sock';
/** Name of the marker `stop` leaves for the monitor. */
export const STOP_MARKER = 'stop-requested';

/** Frame kinds of an attach stream. */
export const FRAME_STDOUT = 1;
export const FRAME_STDERR = 2;
export const FRAME_EXIT = 3;

/** One attach frame. */
export function encodeFrame(kind: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt8(kind, 0);
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** Splits a byte stream into attach frames (chunks are joined once per frame, not once per chunk). */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  /** Adds bytes; returns the complete frames. */
  push(chunk: Buffer): { kind: number; payload: Buffer }[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: { kind: number; payload: Buffer }[] = [];
    for (;;) {
      if (this.size < 5) break;
      if (this.chunks[0]!.length < 5) this.chunks = [Buffer.concat(this.chunks)];
      const len = this.chunks[0]!.readUInt32BE(1);
      if (this.size < 5 + len) break;
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      out.push({ kind: buf.readUInt8(0), payload: buf.subarray(5, 5 + len) });
      const rest = buf.subarray(5 + len);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return out;
  }
}

/** Tells the monitor of a container that the next exit is a stop (no restart policy). */
export async function markStopRequested(dir: string): Promise<void> {
  await fsp.writeFile(join(dir, STOP_MARKER), `${Date.now()}\n`).catch(() => undefined);
}

/** Opens a connection to the monitor's socket in `dir`; INVALID_STATE when none listens. */
export async function connectMonitor(dir: string): Promise<Socket> {
  let fd: number;
  try {
    fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (e) {
    throw new RuntimeError('CONTAINER_NOT_FOUND', `container directory ${dir} is missing`, { cause: e });
  }
  try {
    return await new Promise<Socket>((resolve, reject) => {
      const s = connect(`/proc/self/fd/${fd}/${CONTROL_SOCKET}`);
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new RuntimeError('INVALID_STATE', 'the container monitor does not answer', { cause: e })));
    });
  } finally {
    closeSync(fd);
  }
}

/** Reads the first line of `s` (the monitor's answer); the rest stays in `rest`. */
function readLine(s: Socket): Promise<{ line: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onEnd);
      s.pause();
      resolve({ line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 1) });
    };
    const onEnd = () => reject(new RuntimeError('INVALID_STATE', 'the container monitor closed the connection without an answer'));
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onEnd);
  });
}

/** Sends one request to the monitor in `dir` and returns its JSON answer. */
export async function requestMonitor(dir: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
  const s = await connectMonitor(dir);
  try {
    s.write(`${JSON.stringify(req)}\n`);
    const { line } = await readLine(s);
    return JSON.parse(line) as Record<string, unknown>;
  } finally {
    s.destroy();
  }
}

/** Options of {@link attachMonitor}. */
export interface AttachOptions {
  /** Forwarded to the container's stdin (only when it was started with -i). */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** A byte sequence on stdin that detaches instead of being forwarded (docker's ctrl-p ctrl-q). */
  detachKeys?: Buffer;
}

/** How an attach ended. */
export interface AttachResult {
  /** The container's exit code, when it exited while attached. */
  exitCode?: number;
  /** The user typed the detach keys. */
  detached?: boolean;
  /** The container runs with a terminal. */
  tty: boolean;
}

/**
 * Attaches to a running container through its monitor: relays its stdout/stderr (live, from
 * now on) and `stdin`, until the container exits, the detach keys are typed, or the monitor
 * goes away.
 */
export async function attachMonitor(dir: string, opts: AttachOptions): Promise<AttachResult> {
  const s = await connectMonitor(dir);
  s.write(`${JSON.stringify({ op: 'attach', stdin: !!opts.stdin })}\n`);
  let hello: { ok?: boolean; tty?: boolean; stdin?: boolean; message?: string };
  let rest: Buffer;
  try {
    const r = await readLine(s);
    hello = JSON.parse(r.line) as typeof hello;
    rest = r.rest;
  } catch (e) {
    s.destroy();
    throw e;
  }
  if (!hello.ok) {
    s.destroy();
    throw new RuntimeError('INVALID_STATE', hello.message ?? 'the container monitor refused to attach');
  }
  const tty = !!hello.tty;
  return new Promise<AttachResult>((resolve) => {
    const reader = new FrameReader();
    let exitCode: number | undefined;
    let done = false;
    const finish = (r: Partial<AttachResult>) => {
      if (done) return;
      done = true;
      opts.stdin?.off('data', onStdin);
      opts.stdin?.off('end', onStdinEnd);
      opts.stdin?.pause();
      s.destroy();
      resolve({ tty, ...r });
    };
    const onFrames = (b: Buffer) => {
      for (const f of reader.push(b)) {
        if (f.kind === FRAME_STDOUT) opts.stdout.write(f.payload);
        else if (f.kind === FRAME_STDERR) opts.stderr.write(f.payload);
        else if (f.kind === FRAME_EXIT) {
          try {
            exitCode = (JSON.parse(f.payload.toString('utf8')) as { exitCode?: number }).exitCode;
          } catch {
            /* malformed: unknown code */
          }
        }
      }
    };
    // detach keys: bytes that may start the sequence are held back until it completes or breaks
    const keys = opts.detachKeys ?? Buffer.alloc(0);
    let matched = 0;
    const onStdin = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (!keys.length) {
        s.write(b);
        return;
      }
      const out: number[] = [];
      for (const byte of b) {
        if (byte === keys[matched]) {
          matched++;
          if (matched === keys.length) {
            if (out.length) s.write(Buffer.from(out));
            finish({ detached: true });
            return;
          }
          continue;
        }
        if (matched) out.push(...keys.subarray(0, matched));
        matched = byte === keys[0] ? 1 : 0;
        if (!matched) out.push(byte);
      }
      if (out.length) s.write(Buffer.from(out));
    };
    // our stdin ended: the container's stays open (docker attach without --stdin-once)
    const onStdinEnd = () => undefined;
    if (rest.length) onFrames(rest);
    s.on('data', onFrames);
    s.resume();
    s.once('end', () => finish(exitCode !== undefined ? { exitCode } : {}));
    s.once('close', () => finish(exitCode !== undefined ? { exitCode } : {}));
    s.on('error', () => finish(exitCode !== undefined ? { exitCode } : {}));
    if (opts.stdin && hello.stdin) {
      opts.stdin.on('data', onStdin);
      opts.stdin.on('end', onStdinEnd);
      opts.stdin.resume();
    }
  });
}
