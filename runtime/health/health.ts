/**
 * Docker's container healthchecks: the effective HEALTHCHECK of a container (the image's,
 * overridden field by field by `run --health-*`), and the state machine the monitor drives
 * with each probe result (moby daemon/health.go): `starting` until the first success or until
 * `retries` consecutive failures after the start period; the last 5 results are kept.
 */
import type { HealthConfig } from '../../src/oci/config.js';

/** Docker's defaults, in nanoseconds. */
export const DEFAULT_INTERVAL_NS = 30e9;
export const DEFAULT_TIMEOUT_NS = 30e9;
export const DEFAULT_START_PERIOD_NS = 0;
export const DEFAULT_RETRIES = 3;
/** Docker keeps this many probe results. */
export const MAX_LOG_ENTRIES = 5;
/** Docker keeps at most this many bytes of a probe's output. */
export const MAX_OUTPUT_LEN = 4096;

/** A container's healthcheck with every field resolved (durations in nanoseconds, as docker's). */
export interface Healthcheck {
  /** `["CMD", arg...]` or `["CMD-SHELL", "command"]`. */
  Test: string[];
  Interval: number;
  Timeout: number;
  StartPeriod: number;
  Retries: number;
}

/** `run --health-*` flags; unset fields keep the image's value. */
export interface HealthOverrides {
  /** A shell command (docker's --health-cmd becomes CMD-SHELL). */
  cmd?: string;
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  retries?: number;
  /** --no-healthcheck: disable any HEALTHCHECK of the image. */
  disable?: boolean;
}

/** Health status, as docker's State.Health.Status. */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One probe (docker's HealthcheckResult; times RFC 3339). */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** docker inspect's State.Health. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

/**
 * The healthcheck a container runs: the image's HEALTHCHECK with each given override applied,
 * zero or missing durations replaced by docker's defaults. Undefined when there is none, or
 * when it is disabled (`--no-healthcheck`, or `["NONE"]`).
 */
export function resolveHealthcheck(image: HealthConfig | undefined, o: HealthOverrides = {}): Healthcheck | undefined {
  if (o.disable) return undefined;
  const test = o.cmd !== undefined ? ['CMD-SHELL', o.cmd] : image?.Test;
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  if (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL') return undefined;
  if (test.length < 2) return undefined;
  const pick = (flag: number | undefined, img: number | undefined, def: number) => (flag !== undefined && flag > 0 ? flag : img && img > 0 ? img : def);
  return {
    Test: test,
    Interval: pick(o.intervalNs, image?.Interval, DEFAULT_INTERVAL_NS),
    Timeout: pick(o.timeoutNs, image?.Timeout, DEFAULT_TIMEOUT_NS),
    StartPeriod: pick(o.startPeriodNs, image?.StartPeriod, DEFAULT_START_PERIOD_NS),
    Retries: pick(o.retries, image?.Retries, DEFAULT_RETRIES),
  };
}

/** The argv a probe executes: CMD as is, CMD-SHELL through `/bin/sh -c` (docker's Linux shell). */
export function probeArgs(h: Healthcheck): string[] {
  return h.Test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', h.Test.slice(1).join(' ')] : h.Test.slice(1);
}

/** The state of a container whose process has just started. */
export function initialHealth(): HealthState {
  return { Status: 'starting', FailingStreak: 0, Log: [] };
}

/** Docker's truncation of a probe's output: the first 4 KiB. */
export function truncateOutput(s: string): string {
  const b = Buffer.from(s, 'utf8');
  return b.length <= MAX_OUTPUT_LEN ? s : b.subarray(0, MAX_OUTPUT_LEN).toString('utf8');
}

/**
 * The next health state after a probe result (moby's handleProbeResult): exit 0 makes the
 * container healthy and clears the streak; a failure during the start period (counted from
 * `startedAt`) is logged but not counted while the status is still `starting`; otherwise it
 * extends the streak, and `Retries` consecutive failures make it unhealthy.
 */
export function applyProbe(prev: HealthState, r: HealthResult, h: Healthcheck, startedAt: Date): HealthState {
  const Log = [...prev.Log, { ...r, Output: truncateOutput(r.Output) }].slice(-MAX_LOG_ENTRIES);
  if (r.ExitCode === 0) return { Status: 'healthy', FailingStreak: 0, Log };
  const inStartPeriod = startedAt.getTime() + h.StartPeriod / 1e6 > Date.parse(r.Start);
  if (inStartPeriod && prev.Status === 'starting') return { ...prev, Log };
  const FailingStreak = prev.FailingStreak + 1;
  return { Status: FailingStreak >= h.Retries ? 'unhealthy' : prev.Status, FailingStreak, Log };
}

/** Docker's Go duration syntax as used by --health-interval & co: `1s`, `500ms`, `1m30s`, `2h`. Nanoseconds. */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === s.length && s.length > 0 ? Math.round(total) : undefined;
}
