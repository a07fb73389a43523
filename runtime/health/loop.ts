/**
 * The monitor's healthcheck loop: every Interval, one probe through the same exec path as
 * `tsbuild exec` (every namespace and the cgroup of the container, its seccomp and
 * capabilities), killed after Timeout; output of stdout and stderr together, first 4 KiB kept.
 * A paused container is not probed.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { execInContainer } from '../container/container.js';
import { readState } from '../container/state.js';
import { applyProbe, initialHealth, MAX_OUTPUT_LEN, probeArgs, type Healthcheck, type HealthResult, type HealthState } from './health.js';

/** Options of {@link startHealthchecks}. */
export interface HealthLoopOptions {
  /** The runtime state root (`<root>/run`). */
  runState: string;
  id: string;
  /** A directory for the probe's output file (the container's record directory). */
  dir: string;
  healthcheck: Healthcheck;
  /** When the container's process started (the start period counts from here). */
  startedAt: Date;
  /** Called with the state after every probe. */
  onState: (s: HealthState) => void;
}

/** A running loop. */
export interface HealthLoop {
  /** Stops probing; resolves after a probe in flight ended (it is killed). */
  stop(): Promise<void>;
}

/** Docker's rendering of a Go duration in the timeout message (`30s`, `1.5s`, `500ms`). */
function goDuration(ns: number): string {
  const ms = ns / 1e6;
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m${s - m * 60}s`;
}

/** Runs one probe. */
export async function runProbe(o: Omit<HealthLoopOptions, 'onState' | 'startedAt'>, signal?: AbortSignal): Promise<HealthResult> {
  const h = o.healthcheck;
  const start = new Date();
  const outPath = join(o.dir, 'health.out');
  const fh = await fsp.open(outPath, 'w+', 0o600);
  const timeout = AbortSignal.timeout(Math.max(1, Math.round(h.Timeout / 1e6)));
  const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let exitCode: number;
  let output: string;
  try {
    const r = await execInContainer(o.runState, o.id, { args: probeArgs(h) }, { io: { stdin: 'null', stdout: fh.fd, stderr: fh.fd }, init: false, signal: abort });
    const buf = Buffer.alloc(MAX_OUTPUT_LEN);
    const { bytesRead } = await fh.read(buf, 0, MAX_OUTPUT_LEN, 0);
    output = buf.subarray(0, bytesRead).toString('utf8');
    exitCode = r.signal ? -1 : r.exitCode;
    if (timeout.aborted) output = `Health check exceeded timeout (${goDuration(h.Timeout)})`;
  } catch (e) {
    // could not exec (no such command, container gone): docker records -1 and the error
    exitCode = -1;
    output = (e as Error).message;
  } finally {
    await fh.close();
    await fsp.rm(outPath, { force: true });
  }
  return { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output };
}

/** Starts probing every Interval (the first probe one Interval after the start, as docker). */
export function startHealthchecks(o: HealthLoopOptions): HealthLoop {
  const h = o.healthcheck;
  let state = initialHealth();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  const abort = new AbortController();
  const tick = (): void => {
    inflight = (async () => {
      const rs = await readState(o.runState, o.id).catch(() => undefined);
      if (rs?.status === 'paused') return;
      const r = await runProbe(o, abort.signal);
      if (stopped) return;
      state = applyProbe(state, r, h, o.startedAt);
      o.onState(state);
    })().catch(() => undefined).finally(() => {
      inflight = undefined;
      if (!stopped) timer = setTimeout(tick, Math.max(1, Math.round(h.Interval / 1e6)));
    });
  };
  timer = setTimeout(tick, Math.max(1, Math.round(h.Interval / 1e6)));
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      abort.abort();
      await inflight;
    },
  };
}
