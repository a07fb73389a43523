/**
 * Docker's restart policies (`--restart no|on-failure[:N]|always|unless-stopped`) and the
 * decision the monitor takes after each exit, with moby's restartmanager backoff: 100 ms,
 * doubled after every restart up to one minute, back to 100 ms once a run lasted 10 s.
 */
import { RuntimeError } from '../errors.js';

/** docker inspect's HostConfig.RestartPolicy. */
export interface RestartPolicy {
  Name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  MaximumRetryCount: number;
}

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 60_000;
const RESET_AFTER_MS = 10_000;

/** Parses docker's --restart value. INVALID_SPEC for anything else. */
export function parseRestartPolicy(s: string): RestartPolicy {
  const m = /^(no|on-failure|always|unless-stopped)(?::(\d+))?$/.exec(s);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new RuntimeError('INVALID_SPEC', `invalid restart policy ${JSON.stringify(s)}: want no, on-failure[:max-retries], always or unless-stopped`);
  }
  return { Name: m[1] as RestartPolicy['Name'], MaximumRetryCount: m[2] !== undefined ? Number(m[2]) : 0 };
}

/** What to do after an exit. */
export type RestartDecision = { restart: false } | { restart: true; delayMs: number };

/** The per-container restart state (moby's restartmanager), kept by the monitor. */
export class RestartManager {
  private timeoutMs = 0;
  /** Restarts done so far (docker's RestartCount). */
  count = 0;

  constructor(private readonly policy: RestartPolicy) {}

  /**
   * Decides after an exit with `exitCode` of a run that lasted `ranMs`; `stopped` is set when
   * the user stopped the container (stop, rm -f), which always ends it.
   */
  next(exitCode: number, ranMs: number, stopped: boolean): RestartDecision {
    if (ranMs >= RESET_AFTER_MS) this.timeoutMs = 0;
    this.timeoutMs = this.timeoutMs === 0 ? BACKOFF_START_MS : Math.min(this.timeoutMs * 2, BACKOFF_MAX_MS);
    let restart = false;
    if (stopped) restart = false;
    else if (this.policy.Name === 'always' || this.policy.Name === 'unless-stopped') restart = true;
    else if (this.policy.Name === 'on-failure') {
      const max = this.policy.MaximumRetryCount;
      restart = exitCode !== 0 && (max === 0 || this.count < max);
    }
    if (!restart) return { restart: false };
    this.count++;
    return { restart: true, delayMs: this.timeoutMs };
  }
}
