import { constants as fsc } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContentError } from '../../util/errors.js';
import { processAlive } from '../content/file-store.js';

/** A held lock; release() is idempotent. */
export interface HeldLock {
  release(): Promise<void>;
}

/** Options of {@link acquireLock}. */
export interface LockOptions {
  /** Give up after this long with ContentError LOCKED (default 60 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

interface LockInfo {
  pid: number;
  host: string;
  token: string;
}

/**
 * An inter-process lock on `path` made with an O_EXCL lock file holding `{pid, host, token}`.
 *
 * A lock file whose owner process no longer exists on this host is stale and is broken.
 * Breaking is itself guarded by a second O_EXCL file (`<path>.break`) so that two waiters can
 * never both break the same stale lock and then delete each other's fresh one; a `.break` file
 * older than 10 s (its owner died during the few syscalls it guards) is removed.
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<HeldLock> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const mine: LockInfo = { pid: process.pid, host: hostname(), token };
  let delay = 2;
  for (;;) {
    opts.signal?.throwIfAborted();
    if (await tryCreate(path, JSON.stringify(mine))) {
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          const cur = await readInfo(path);
          if (cur?.token === token) await unlink(path).catch(() => {});
        },
      };
    }
    await breakIfStale(path);
    if (Date.now() > deadline) {
      const cur = await readInfo(path);
      throw new ContentError('LOCKED', `timed out waiting for lock ${path}${cur ? ` held by pid ${cur.pid}` : ''}`);
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

/** Runs `fn` while holding the lock on `path`. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts?: LockOptions): Promise<T> {
  const lock = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function tryCreate(path: string, content: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new ContentError('IO', `creating lock file ${path}`, { cause: e });
  }
  try {
    await fh.writeFile(content);
  } finally {
    await fh.close();
  }
  return true;
}

async function readInfo(path: string): Promise<LockInfo | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

async function breakIfStale(path: string): Promise<void> {
  const info = await readInfo(path);
  if (!info) {
    // Being written right now (empty) or unreadable: stale only if old.
    const st = await stat(path).catch(() => undefined);
    if (!st || Date.now() - st.mtimeMs < 10_000) return;
  } else if (info.host !== hostname() || processAlive(info.pid)) {
    return;
  }
  const guard = `${path}.break`;
  if (!(await tryCreate(guard, String(process.pid)))) {
    const st = await stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 10_000) await unlink(guard).catch(() => {});
    return;
  }
  try {
    // Re-check under the guard: the lock may have been broken and re-taken meanwhile.
    const again = await readInfo(path);
    if (again?.token === info?.token) await unlink(path).catch(() => {});
  } finally {
    await unlink(guard).catch(() => {});
  }
}
