/**
 * Directories of `RUN --mount=type=cache`: `<store root>/buildcache/mounts/<sha256 of id>/`,
 * kept across builds. `shared` (the default) lets concurrent RUNs use one directory, `locked`
 * makes them take turns (within this process and across processes, through a lock file),
 * `private` gives a RUN that finds the directory busy its own fresh one. Acquiring touches the
 * directory (its mtime is the last use `builder prune` goes by).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chown, chmod, mkdir, open, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILD_CACHE_DIR } from './cache.js';

/** A cache mount directory in use; call `release` when the RUN ends. */
export interface CacheMountLease {
  readonly path: string;
  release(): Promise<void>;
}

/** Hands out cache mount directories. */
export interface CacheMounts {
  acquire(id: string, sharing: 'shared' | 'private' | 'locked', owner: { uid: number; gid: number; mode: number }): Promise<CacheMountLease>;
}

/** {@link CacheMounts} under a store root. */
export class DirCacheMounts implements CacheMounts {
  private readonly dir: string;
  private readonly busy = new Map<string, number>();
  private readonly locks = new Map<string, Promise<void>>();

  constructor(storeRoot: string) {
    this.dir = join(storeRoot, BUILD_CACHE_DIR, 'mounts');
  }

  async acquire(id: string, sharing: 'shared' | 'private' | 'locked', owner: { uid: number; gid: number; mode: number }): Promise<CacheMountLease> {
    const hex = createHash('sha256').update(id).digest('hex');
    let path = join(this.dir, hex);
    let temp = false;
    if (sharing === 'private' && (this.busy.get(hex) ?? 0) > 0) {
      path = join(this.dir, `private-${hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
      temp = true;
    }
    let unlock: (() => Promise<void>) | undefined;
    if (sharing === 'locked') unlock = await this.lock(hex);
    // the directory's mtime is its last use (`builder prune` keeps what running builds touched)
    const now = new Date();
    const fresh = !(await utimes(path, now, now).then(() => true, () => false));
    if (fresh) {
      await mkdir(path, { recursive: true });
      await chown(path, owner.uid, owner.gid);
      await chmod(path, owner.mode);
    }
    this.busy.set(hex, (this.busy.get(hex) ?? 0) + 1);
    let done = false;
    return {
      path,
      release: async () => {
        if (done) return;
        done = true;
        this.busy.set(hex, (this.busy.get(hex) ?? 1) - 1);
        if (temp) await rm(path, { recursive: true, force: true });
        await unlock?.();
      },
    };
  }

  /** An exclusive lock: in-process queue plus an O_EXCL lock file for other processes. */
  private async lock(hex: string): Promise<() => Promise<void>> {
    const prev = this.locks.get(hex) ?? Promise.resolve();
    let releaseLocal!: () => void;
    const mine = new Promise<void>((r) => (releaseLocal = r));
    this.locks.set(hex, prev.then(() => mine));
    await prev;
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, `${hex}.lock`);
    for (let i = 0; ; i++) {
      try {
        const fh = await open(file, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // a holder that died leaves the file: take it over after a minute
        const st = await stat(file).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > 60_000) await rm(file, { force: true });
        await new Promise((r) => setTimeout(r, Math.min(200, 10 * (i + 1))));
      }
    }
    return async () => {
      await rm(file, { force: true });
      releaseLocal();
    };
  }
}
