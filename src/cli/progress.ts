/**
 * Transfer progress of pull, push and copy, rendered from the registry library's per-blob
 * events (`RemoteOptions.onProgress`):
 * - `tty`: one line per blob, redrawn in place (cursor up, erase line) at most every
 *   `intervalMs`: bytes moved, total and the current rate; a finished blob keeps its final line.
 * - `plain` (not a terminal: CI logs, pipes): one line when a blob starts and one when it is
 *   done, with its size, the time taken and the average rate; nothing per chunk.
 * - `quiet`: nothing (the command still prints its result on stdout).
 */
import type { TransferProgress } from '../../registry/remote/options.js';

/** How transfer progress is shown. */
export type TransferProgressMode = 'tty' | 'plain' | 'quiet';

/** Options of {@link transferProgress}. */
export interface TransferProgressOptions {
  /** `downloading` / `uploading` / `copying`: the word shown while bytes move. */
  readonly verb: string;
  /** Minimum time between two redraws in tty mode (default 100 ms). */
  readonly intervalMs?: number;
  /** Clock in ms (tests inject one). */
  readonly now?: () => number;
}

/** A renderer: `onProgress` goes into RemoteOptions; `finish()` draws the last state. */
export interface TransferProgressRenderer {
  readonly onProgress: ((e: TransferProgress) => void) | undefined;
  finish(): void;
}

/** The mode for a stream: quiet with -q, tty when the stream is a terminal, else plain. */
export function progressMode(out: { isTTY?: boolean }, quiet: boolean): TransferProgressMode {
  if (quiet) return 'quiet';
  return out.isTTY ? 'tty' : 'plain';
}

interface BlobLine {
  readonly digest: string;
  total: number;
  done: number;
  /** When bytes began to move and how many were there already (a resumed download). */
  startedAt: number;
  startedFrom: number;
  finishedAt?: number;
  note?: 'already exists' | 'mounted';
  /** Rate samples for the current rate: last redraw's time and byte count. */
  sampleAt: number;
  sampleDone: number;
  rate: number;
}

/** Formats a byte count: `512 B`, `12.3 KiB`, `4.0 MiB`, `1.20 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

function formatRate(bytesPerSec: number): string {
  return `${formatBytes(Math.round(bytesPerSec))}/s`;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** Makes the progress renderer writing to `out` in `mode`. */
export function transferProgress(out: NodeJS.WritableStream, mode: TransferProgressMode, opts: TransferProgressOptions): TransferProgressRenderer {
  if (mode === 'quiet') return { onProgress: undefined, finish: () => undefined };
  const now = opts.now ?? (() => Date.now());
  const blobs = new Map<string, BlobLine>();
  const line = (digest: string, total: number): BlobLine => {
    let b = blobs.get(digest);
    if (!b) {
      const t = now();
      b = { digest, total, done: 0, startedAt: t, startedFrom: 0, sampleAt: t, sampleDone: 0, rate: 0 };
      blobs.set(digest, b);
    }
    return b;
  };

  if (mode === 'plain') {
    const onProgress = (e: TransferProgress): void => {
      if (e.state === 'progress') return;
      if (e.state === 'start') {
        const b = line(e.digest, e.total);
        b.startedAt = now();
        b.startedFrom = e.done;
        const from = e.done > 0 ? ` (continuing at ${formatBytes(e.done)})` : '';
        out.write(`${short(e.digest)}: ${opts.verb} ${formatBytes(e.total)}${from}\n`);
        return;
      }
      if (e.skipped || e.mounted) {
        out.write(`${short(e.digest)}: ${e.skipped ? 'already exists' : 'mounted'}\n`);
        return;
      }
      const b = line(e.digest, e.total);
      const ms = Math.max(1, now() - b.startedAt);
      const moved = e.total - b.startedFrom;
      out.write(`${short(e.digest)}: done ${formatBytes(e.total)} in ${formatSeconds(ms)} (${formatRate((moved * 1000) / ms)})\n`);
    };
    return { onProgress, finish: () => undefined };
  }

  // tty: the block of lines drawn last time is redrawn in place.
  const interval = opts.intervalMs ?? 100;
  let drawn = 0;
  let lastDraw = -Infinity;
  const render = (b: BlobLine): string => {
    const id = short(b.digest);
    if (b.note) return `${id}: ${b.note}`;
    if (b.finishedAt !== undefined) {
      const ms = Math.max(1, b.finishedAt - b.startedAt);
      return `${id}: done ${formatBytes(b.total)} in ${formatSeconds(ms)} (${formatRate(((b.total - b.startedFrom) * 1000) / ms)})`;
    }
    // every byte moved, not yet done: the receiving side is finishing (fsync, rename, commit)
    if (b.done >= b.total && b.total > 0) return `${id}: ${opts.verb} ${formatBytes(b.total)} / ${formatBytes(b.total)} 100%  finishing`;
    const pct = b.total > 0 ? Math.floor((b.done * 100) / b.total) : 100;
    return `${id}: ${opts.verb} ${formatBytes(b.done)} / ${formatBytes(b.total)} ${String(pct).padStart(3)}%  ${formatRate(b.rate)}`;
  };
  const draw = (): void => {
    const t = now();
    lastDraw = t;
    for (const b of blobs.values()) {
      if (b.finishedAt !== undefined || b.note) continue;
      const dt = t - b.sampleAt;
      if (dt >= interval / 2) {
        b.rate = ((b.done - b.sampleDone) * 1000) / dt;
        b.sampleAt = t;
        b.sampleDone = b.done;
      }
    }
    let s = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const b of blobs.values()) s += `\r\x1b[2K${render(b)}\n`;
    drawn = blobs.size;
    out.write(s);
  };
  const onProgress = (e: TransferProgress): void => {
    const b = line(e.digest, e.total);
    b.total = e.total;
    if (e.state === 'start') {
      b.startedAt = b.sampleAt = now();
      b.startedFrom = b.sampleDone = b.done = e.done;
    } else if (e.state === 'progress') {
      b.done = e.done;
    } else {
      b.done = e.total;
      if (e.skipped) b.note = 'already exists';
      else if (e.mounted) b.note = 'mounted';
      else b.finishedAt = now();
    }
    if (now() - lastDraw >= interval) draw();
  };
  return { onProgress, finish: () => (blobs.size > 0 ? draw() : undefined) };
}
