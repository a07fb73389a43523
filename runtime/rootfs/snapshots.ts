import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Layer } from '../../src/oci/image.js';
import { RuntimeError } from '../spec/errors.js';

/**
 * Unpacked image layers, shared read-only by every container: `<store root>/snapshots/<hex of
 * diffId>`, in overlay form (whiteouts as char 0/0, opaque dirs as trusted.overlay.opaque), so
 * each one is directly an overlay lowerdir. A snapshot directory appears only complete: it is
 * unpacked into a temp dir and renamed; when two processes race, one rename wins and the other
 * drops its copy and uses the winner's.
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

  private async unpack(layer: Layer, dir: string, diffId: string, signal?: AbortSignal): Promise<string> {
    if (await exists(dir)) return dir;
    await mkdir(this.dir, { recursive: true });
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
