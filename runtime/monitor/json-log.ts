/**
 * Docker's json-file log driver format: one JSON object per line,
 * `{"log":"text\n","stream":"stdout"|"stderr","time":"RFC3339Nano"}`. A line longer than
 * 16 KiB is split (docker does the same); a last line without a newline is written as is.
 */
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';

/** One log entry. */
export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

const MAX_LINE = 16 * 1024;

/** Size cap of a json-file log: rotate at `maxSize` bytes, keep `maxFiles` files in all (docker --log-opt). */
export interface LogRotation {
  maxSize: number;
  maxFiles: number;
}

/**
 * Appends entries of several streams to one json-file log (append-only, one write per entry).
 * With `rotation`, a write that would pass maxSize first renames the log to `.1` (`.1` to `.2`,
 * ...; the oldest beyond maxFiles is dropped), as docker's json-file driver does.
 */
export class JsonLogWriter {
  private chain: Promise<void> = Promise.resolve();
  private constructor(private fh: fsp.FileHandle, private size: number, private readonly path: string, private readonly rotation?: LogRotation) {}

  /** Opens (creates) the log for appending. */
  static async open(path: string, rotation?: LogRotation): Promise<JsonLogWriter> {
    const fh = await fsp.open(path, 'a', 0o640);
    return new JsonLogWriter(fh, (await fh.stat()).size, path, rotation);
  }

  private async rotate(): Promise<void> {
    const r = this.rotation!;
    await this.fh.close();
    if (r.maxFiles <= 1) await fsp.rm(this.path, { force: true });
    else {
      await fsp.rm(`${this.path}.${r.maxFiles - 1}`, { force: true });
      for (let i = r.maxFiles - 2; i >= 1; i--) await fsp.rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => undefined);
      await fsp.rename(this.path, `${this.path}.1`);
    }
    this.fh = await fsp.open(this.path, 'a', 0o640);
    this.size = 0;
  }

  private write(stream: 'stdout' | 'stderr', text: string): void {
    const line = Buffer.from(`${JSON.stringify({ log: text, stream, time: new Date().toISOString() })}\n`);
    this.chain = this.chain.then(async () => {
      if (this.rotation && this.size > 0 && this.size + line.length > this.rotation.maxSize) await this.rotate();
      await this.fh.write(line);
      this.size += line.length;
    }).then(() => undefined, () => undefined);
  }

  /** Copies `r` into the log as `stream`, line by line (16 KiB pieces of longer ones); resolves at its end. */
  pipe(r: Readable, stream: 'stdout' | 'stderr'): Promise<void> {
    return new Promise((resolve) => {
      let pending = '';
      r.setEncoding('utf8');
      r.on('data', (chunk: string) => {
        pending += chunk;
        for (;;) {
          const nl = pending.indexOf('\n');
          const cut = nl >= 0 && nl < MAX_LINE ? nl + 1 : pending.length >= MAX_LINE ? MAX_LINE : 0;
          if (!cut) break;
          this.write(stream, pending.slice(0, cut));
          pending = pending.slice(cut);
        }
      });
      const end = (): void => {
        if (pending) this.write(stream, pending);
        pending = '';
        resolve();
      };
      r.on('end', end);
      r.on('error', end);
    });
  }

  /** Waits for every write and closes the file. */
  async close(): Promise<void> {
    await this.chain;
    await this.fh.close();
  }
}

/** The rotated files of a log that exist, oldest first (`.N` ... `.1`). */
export async function rotatedLogs(path: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 1; ; i++) {
    const p = `${path}.${i}`;
    if (!(await fsp.access(p).then(() => true, () => false))) break;
    out.unshift(p);
  }
  return out;
}

/**
 * Reads a json-file log from byte `start` up to its last whole line; returns the entries and
 * the offset after them (a line still being written is left for the next read).
 */
export async function readLog(path: string, start = 0): Promise<{ entries: LogEntry[]; end: number }> {
  const entries: LogEntry[] = [];
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, 'r');
  } catch {
    return { entries, end: start };
  }
  try {
    const size = (await fh.stat()).size;
    if (size <= start) return { entries, end: start };
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    const limit = buf.subarray(0, bytesRead).lastIndexOf(0x0a) + 1;
    for (const l of buf.subarray(0, limit).toString('utf8').split('\n')) {
      if (!l) continue;
      try {
        entries.push(JSON.parse(l) as LogEntry);
      } catch {
        /* a damaged line: skip it */
      }
    }
    return { entries, end: start + limit };
  } finally {
    await fh.close();
  }
}
