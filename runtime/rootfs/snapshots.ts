import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { Layer } from '../../src/oci/image.js';
import { RuntimeError } from '../spec/errors.js';

/**
 * Unpacked image layers, shared read-only by every container: `<store root>/snapshots/<hex of
 * diffId>`, in overlay form (whiteouts as char 0/0, opaque dirs as trusted.overlay.opaque), so
 * each one is directly an overlay lowerdir. A snapshot directory appears only complete: it is
 * unpacked into a temp dir and renamed. Processes that need the same layer at once unpack it
 * once: the first takes `.lock-<hex>` (O_EXCL, holding its pid), the others wait for the
 * snapshot to appear (or for the lock to go, then try again; a dead holder's lock is broken).
 * Should a lock be lost anyway, the rename still decides: one copy wins, the other is dropped.
 */
export class SnapshotStore {
  private readonly inflight = new Map<string, Promise<string>>();
  /** The directory holding the snapshots. */
  readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = join(storeRoot, 'snapshots');
  }

  /** Path of the snapshot for a diffId (may not exist yet). */
  pathFor(diffId: string): string {
    const hex = diffId.slice(diffId.indexOf(':') + 1);
    if (!/^[a-f0-9]{64}$/.test(hex)) throw new RuntimeError('ROOTFS', `invalid layer diffId ${diffId}`);
    return join(this.dir, hex);
  }

  /** The unpacked directory of `layer`, unpacking it first when needed. */
  async ensure(layer: Layer, signal?: AbortSignal): Promise<string> {
    const diffId = await layer.diffId();
    const dir = this.pathFor(diffId);
    let p = this.inflight.get(dir);
    if (!p) {
      p = this.unpack(layer, dir, diffId, signal).finally(() => this.inflight.delete(dir));
      this.inflight.set(dir, p);
    }
    return p;
  }

  /** Removes temp dirs of unpackers that died (their pid is in the name). */
  private async removeOrphans(): Promise<void> {
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = /^\.tmp-[0-9a-f]{12}-(\d+)-[0-9a-f]+$/.exec(name);
      if (m && !alive(Number(m[1]))) await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  /**
   * Takes the unpack lock of `dir`, or waits while another live process holds it. Resolves
   * with a release function, or with undefined when the snapshot appeared meanwhile.
   */
  private async lock(dir: string, signal?: AbortSignal): Promise<(() => Promise<void>) | undefined> {
    const lockPath = join(this.dir, `.lock-${dir.slice(-64)}`);
    for (;;) {
      signal?.throwIfAborted();
      if (await exists(dir)) return undefined;
      try {
        const fh = await open(lockPath, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return () => rm(lockPath, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      // a lock whose holder died (or that is still being written: no pid yet) ...
      if (holder && !alive(holder)) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (!holder) {
        const st = await stat(lockPath).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > 10_000) await rm(lockPath, { force: true });
      }
      await sleep(25, undefined, signal ? { signal } : {});
    }
  }

  private async unpack(layer: Layer, dir: string, diffId: string, signal?: AbortSignal): Promise<string> {
    if (await exists(dir)) return dir;
    await mkdir(this.dir, { recursive: true });
    const release = await this.lock(dir, signal);
    if (!release) return dir;
    try {
      return await this.unpackLocked(layer, dir, diffId, signal);
    } finally {
      await release();
    }
  }

  private async unpackLocked(layer: Layer, dir: string, diffId: string, signal?: AbortSignal): Promise<string> {
    await this.removeOrphans();
    const tmp = join(this.dir, `.tmp-${dir.slice(-12)}-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      // loaded on first unpack only: a run over existing snapshots never needs the tar code
      const { extractLayer } = await import('../../src/oci/tar/extract.js');
      await extractLayer(await layer.uncompressed(), tmp, { whiteouts: 'overlay', ...(signal ? { signal } : {}) });
      try {
        await rename(tmp, dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        // another process finished the same layer first: use its copy
      }
    } catch (e) {
      throw new RuntimeError('ROOTFS', `unpacking layer ${diffId}`, { cause: e, step: 'unpack' });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return dir;
  }
}

/** True when a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
