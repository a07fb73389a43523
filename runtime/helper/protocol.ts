/**
 * The wire protocol between tsbuild and native/build/tsbuild-helper (native/src/protocol.h is
 * the other half; keep them identical). Transport: the helper's fd 3, a unix stream socket.
 * Every message is a 4-byte little-endian length N (1..16 MiB) followed by N bytes of UTF-8
 * JSON, an object with a string member `kind`.
 */

/** Largest message either side accepts. */
export const MAX_MESSAGE = 16 * 1024 * 1024;

/** The setup steps a helper error can name, in the order the child runs them. */
export const SETUP_STEPS = [
  'reexec', 'config', 'clone', 'namespace', 'userns-map', 'cgroup', 'propagation', 'rootfs', 'mount', 'device', 'hooks',
  'pivot_root', 'sysctl', 'readonly-paths', 'masked-paths', 'hostname', 'rlimit', 'terminal', 'wait-start', 'capabilities', 'user',
  'no_new_privs', 'seccomp', 'init', 'cwd', 'exec',
] as const;
/** One step of the helper's child-side setup. */
export type SetupStep = (typeof SETUP_STEPS)[number];

/** First (and only) message to the helper: what to run. */
export interface ConfigMessage {
  kind: 'config';
  /** Bundle directory; the helper chdirs here, so relative paths in the spec are bundle-relative. */
  bundle: string;
  /** config.json to read (relative to the bundle or absolute); or `config` inline. */
  configPath?: string;
  config?: unknown;
  /** cgroup.procs files the child writes itself into before creating its cgroup namespace. */
  cgroupProcs?: string[];
  /** Stop after setup and wait for `start` (exec fifo when given, else a `start` message). */
  waitStart?: boolean;
  execFifo?: string;
  /** Run a pid-1 reaper that forwards signals to the command (docker run --init). */
  init?: boolean;
  /** The helper writes {"exitCode":N,"signal"?:S} here when the container's first process ends. */
  exitFile?: string;
  /** Fds 3..3+N-1 of the helper are passed to the container (runc --preserve-fds). */
  preserveFds?: number;
  /** Join an existing container (its namespaces by path in the spec): no rootfs setup. */
  exec?: boolean;
  /** runc --console-socket: with process.terminal, the pty master is sent to this unix socket (SCM_RIGHTS). */
  consoleSocket?: string;
}
/** Answer to a mapping-request: /proc/PID/{uid,gid}_map are written. */
export interface MappingWrittenMessage { kind: 'mapping-written' }
/** Releases a container that waits for start without an exec fifo. */
export interface StartMessage { kind: 'start' }
/**
 * Answer to a hooks-request: the prestart and createRuntime hooks ran on the host; `state` and
 * `startState` are the state JSON texts the child gives its createContainer and startContainer
 * hooks on stdin.
 */
export interface HooksDoneMessage { kind: 'hooks-done'; state: string; startState: string }
/** Messages tsbuild sends. */
export type ToHelper = ConfigMessage | MappingWrittenMessage | StartMessage | HooksDoneMessage;

/** Messages the helper sends. */
export type HelperMessage =
  | { kind: 'pid'; pid: number }
  | { kind: 'mapping-request'; pid: number }
  | { kind: 'hooks-request'; pid: number }
  | { kind: 'created'; droppedCapabilities: string[] }
  | { kind: 'started' }
  | { kind: 'error'; step: SetupStep; errno: number; message: string }
  | { kind: 'exit'; exitCode: number; signal?: string };

/** Frames one message. */
export function encodeMessage(m: ToHelper | HelperMessage): Buffer {
  const body = Buffer.from(JSON.stringify(m), 'utf8');
  if (body.length === 0 || body.length > MAX_MESSAGE) throw new RangeError(`helper message of ${body.length} bytes`);
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32LE(body.length, 0);
  return Buffer.concat([hdr, body]);
}

const KINDS = new Set(['pid', 'mapping-request', 'hooks-request', 'created', 'started', 'error', 'exit']);

/** Validates one decoded helper message; throws a TypeError naming the problem. */
export function parseHelperMessage(json: unknown): HelperMessage {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TypeError('helper message is not an object');
  const m = json as Record<string, unknown>;
  if (typeof m.kind !== 'string' || !KINDS.has(m.kind)) throw new TypeError(`unknown helper message kind ${JSON.stringify(m.kind)}`);
  const num = (k: string): number => {
    if (typeof m[k] !== 'number' || !Number.isInteger(m[k])) throw new TypeError(`helper message ${m.kind} has no integer ${k}`);
    return m[k] as number;
  };
  switch (m.kind) {
    case 'pid':
    case 'mapping-request':
    case 'hooks-request':
      return { kind: m.kind, pid: num('pid') };
    case 'created':
      return { kind: 'created', droppedCapabilities: Array.isArray(m.droppedCapabilities) ? m.droppedCapabilities.map(String) : [] };
    case 'started':
      return { kind: 'started' };
    case 'error':
      if (typeof m.step !== 'string' || typeof m.message !== 'string') throw new TypeError('helper error message lacks step or message');
      return { kind: 'error', step: m.step as SetupStep, errno: num('errno'), message: m.message };
    default: {
      const out: HelperMessage = { kind: 'exit', exitCode: num('exitCode') };
      if (typeof m.signal === 'string') out.signal = m.signal;
      return out;
    }
  }
}

/**
 * Incremental decoder: feed it socket chunks, get whole messages. Throws a TypeError on a bad
 * frame (zero or oversized length, invalid JSON, unknown kind); the stream is then unusable.
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Appends `chunk` and returns every message now complete, in order. */
  push(chunk: Buffer): HelperMessage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: HelperMessage[] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32LE(0);
      if (n === 0 || n > MAX_MESSAGE) throw new TypeError(`bad helper frame length ${n}`);
      if (this.buf.length < 4 + n) break;
      const body = this.buf.subarray(4, 4 + n).toString('utf8');
      this.buf = this.buf.subarray(4 + n);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch (e) {
        throw new TypeError(`helper message is not JSON: ${(e as Error).message}`);
      }
      out.push(parseHelperMessage(json));
    }
    return out;
  }

  /** Bytes of an incomplete frame still buffered (non-zero at EOF means a truncated message). */
  get pending(): number {
    return this.buf.length;
  }
}
