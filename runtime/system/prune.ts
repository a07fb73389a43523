/**
 * `tsbuild system prune` and `system df`, the runtime side: removes stopped containers (docker
 * system prune) and repairs what crashed runs left behind — containers whose owner (monitor
 * or run command) and process are dead (their state released: cgroup, runtime state, CNI DEL
 * with the cached ADD result, rootfs mount), network attachments and host-local leases of
 * vanished containers (network/repair.ts), overlay mounts under the store root that no live
 * container owns, empty container cgroups under tsbuild's parents (v1 hierarchies and v2), and
 * layer snapshot directories no image references and no mount uses. Images (dangling ones,
 * unreferenced blobs) are the image store's gc, called by the CLI.
 *
 * Leftovers younger than `graceMs` are spared where another process might still be setting
 * them up (an empty cgroup before the helper joins it, a snapshot unpacked before its mount).
 */
import { promises as fsp, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { walkGraph } from '../../src/oci/layout/graph.js';
import { isConfig } from '../../src/oci/media-types.js';
import type { ImageStore } from '../../src/oci/store/image-store.js';
import { nullLogger, type Logger } from '../../src/util/logger.js';
import { createCgroupManager } from '../cgroups/manager.js';
import { removeContainer } from '../container/lifecycle.js';
import { containerInfo, listIds, readRecord, readStatus, recordPaths, type ContainerRecord } from '../container/records.js';
import { isSameProcess } from '../container/state.js';
import { listConfLists } from '../network/cni.js';
import { repairNetworks, type NetworkRepair } from '../network/repair.js';
import { unmount } from '../rootfs/prepare.js';
import { reapStaleContainers } from '../run.js';

/** The cgroup parents tsbuild uses by default: `run` and build steps. */
export const DEFAULT_CGROUP_PARENTS = ['tsbuild', 'tsbuild-build'];

/** Options of {@link pruneContainers}. */
export interface PruneOptions {
  /** Only repair crashed containers; keep the stopped ones (default: remove them, as docker). */
  keepStopped?: boolean;
  /** More cgroup parents to sweep (run --cgroup-parent values); those of recorded containers are swept anyway. */
  cgroupParents?: readonly string[];
  /** Spare leftovers younger than this (default 60 s). */
  graceMs?: number;
  log?: Logger;
}

/** What {@link pruneContainers} did. */
export interface PruneReport {
  /** Stopped containers removed (ids). */
  removed: string[];
  /** Containers found dead (owner and process gone) and released: ids. */
  repaired: string[];
  network: NetworkRepair;
  /** Overlay mounts unmounted. */
  mounts: string[];
  /** Empty cgroup directories removed. */
  cgroups: string[];
  /** Failures, one line each; the rest went on. */
  errors: string[];
}

const ID_HEX = /^[0-9a-f]{64}$/;
const LIVE = new Set(['created', 'running', 'paused', 'restarting']);

/** Ids of the container directories of this store that a live process owns (or that are being set up). */
async function liveContainers(root: string, graceMs: number): Promise<Set<string>> {
  const live = new Set<string>();
  const dir = join(root, 'containers');
  for (const id of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!ID_HEX.test(id)) continue;
    if (await readRecord(root, id)) {
      const st = await readStatus(root, id);
      if (st && LIVE.has(st.status) && isSameProcess(st.ownerPid, st.ownerStartTime)) live.add(id);
      // a record without a status yet: run is between writing the two
      else if (!st) live.add(id);
      continue;
    }
    const owner = await fsp.readFile(join(dir, id, 'owner.json'), 'utf8').then((t) => JSON.parse(t) as { pid?: number; startTime?: string }, () => undefined);
    if (owner ? isSameProcess(owner.pid, owner.startTime) : Date.now() - ((await fsp.stat(join(dir, id)).catch(() => undefined))?.mtimeMs ?? 0) < graceMs) live.add(id);
  }
  return live;
}

/** Mount points of /proc/self/mountinfo with their fstype and super options. */
export async function mountTable(): Promise<{ point: string; fstype: string; options: string }[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: { point: string; fstype: string; options: string }[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({ point: unescape(f[4]!), fstype: f[sep + 1]!, options: f[sep + 3] ?? '' });
  }
  return out;
}

function realRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    return root;
  }
}

/**
 * Removes stopped containers and repairs the leftovers of crashed ones (see the module
 * comment). Best effort: a failure is reported and the rest goes on.
 */
export async function pruneContainers(root: string, opts: PruneOptions = {}): Promise<PruneReport> {
  const log = opts.log ?? nullLogger;
  const graceMs = opts.graceMs ?? 60_000;
  const report: PruneReport = { removed: [], repaired: [], network: { detached: [], leases: [], rules: [], errors: [] }, mounts: [], cgroups: [], errors: [] };
  const parents = new Set([...DEFAULT_CGROUP_PARENTS, ...(opts.cgroupParents ?? [])]);

  const ids = await listIds(root);
  const before = new Map<string, string | undefined>();
  for (const id of ids) before.set(id, (await readStatus(root, id))?.status);
  // 1. half-made container dirs of dead runs and build steps (no record); records of dead owners marked exited
  for (const id of await reapStaleContainers(root, log)) if (!before.has(id)) report.repaired.push(id);
  // 2. recorded containers: a dead owner means exited (resources released); stopped ones go
  for (const id of ids) {
    const rec: ContainerRecord | undefined = await readRecord(root, id);
    if (rec) parents.add(dirname(rec.cgroupName));
    try {
      const info = await containerInfo(root, id);
      const was = before.get(id);
      if (was && was !== 'exited' && (!info || info.status.status === 'exited')) report.repaired.push(id);
      if (!info || info.status.status !== 'exited' || opts.keepStopped) continue;
      await removeContainer(root, id);
      report.removed.push(id);
    } catch (e) {
      report.errors.push(`container ${id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }
  // 3. network attachments and leases of containers that are gone
  report.network = await repairNetworks(root, await listConfLists(root));
  report.errors.push(...report.network.errors);

  const live = await liveContainers(root, graceMs);
  // 4. overlay mounts under the store root that no live container owns
  const rroot = realRoot(root);
  const mounts = (await mountTable()).filter((m) => m.fstype === 'overlay' && (m.point.startsWith(`${rroot}/`) || m.point.startsWith(`${root}/`)));
  for (const m of mounts.reverse()) {
    const rel = m.point.startsWith(`${rroot}/`) ? m.point.slice(rroot.length + 1) : m.point.slice(root.length + 1);
    const owner = /^containers\/([0-9a-f]{64})\//.exec(rel)?.[1];
    if (owner && live.has(owner)) continue;
    try {
      unmount(m.point);
      report.mounts.push(m.point);
    } catch (e) {
      report.errors.push(`unmounting ${m.point}: ${(e as Error).message}`);
    }
  }
  // 5. empty container cgroups under tsbuild's parents
  for (const parent of parents) {
    let dirs: string[];
    try {
      dirs = [...new Set(Object.values((await createCgroupManager({ name: parent })).paths()))];
    } catch (e) {
      report.errors.push(`cgroup parent ${parent}: ${(e as Error).message}`);
      continue;
    }
    for (const dir of dirs) {
      for (const ent of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (!ent.isDirectory() || live.has(ent.name)) continue;
        const cg = join(dir, ent.name);
        const st = await fsp.stat(cg).catch(() => undefined);
        if (!st || Date.now() - st.mtimeMs < graceMs) continue;
        const procs = await fsp.readFile(join(cg, 'cgroup.procs'), 'utf8').catch(() => 'x');
        if (procs.trim()) continue;
        try {
          await fsp.rmdir(cg);
          report.cgroups.push(cg);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          // children or a process that just joined: not a leftover
          if (code !== 'EBUSY' && code !== 'ENOTEMPTY' && code !== 'ENOENT') report.errors.push(`removing cgroup ${cg}: ${(e as Error).message}`);
        }
      }
    }
  }
  return report;
}

/** Hex digests of every layer diffID of the store's images (and its gc roots' images). */
export async function referencedDiffIds(store: ImageStore): Promise<Set<string>> {
  const out = new Set<string>();
  const seen = new Set<string>();
  const visit = async (d: Descriptor) => {
    if (!isConfig(d.mediaType)) return;
    try {
      const chunks: Buffer[] = [];
      for await (const c of await store.content.open(d)) chunks.push(c as Buffer);
      const cfg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
      for (const id of cfg.rootfs?.diff_ids ?? []) out.add(id.slice(id.indexOf(':') + 1));
    } catch {
      /* a config that cannot be read protects nothing: fsck reports it */
    }
  };
  const roots: Descriptor[] = (await store.list()).map((r) => r.descriptor);
  for (const d of await store.gcRoots()) roots.push({ mediaType: 'application/octet-stream', digest: d, size: 0 });
  for (const r of roots) await walkGraph(store.content, r, visit, { seen, onMissing: () => undefined }).catch(() => undefined);
  return out;
}

/** Layer snapshot directories in use now: overlay lowerdirs (absolute, or short-path links of a container dir). */
async function snapshotsInUse(root: string): Promise<Set<string>> {
  const used = new Set<string>();
  for (const m of await mountTable()) {
    if (m.fstype !== 'overlay') continue;
    const lower = /(?:^|,)lowerdir=([^,]*)/.exec(m.options)?.[1];
    for (const l of lower?.split(':') ?? []) used.add(l.replace(/\/+$/, '').split('/').pop() ?? '');
  }
  const cdir = join(root, 'containers');
  for (const id of await fsp.readdir(cdir).catch(() => [] as string[])) {
    for (const l of await fsp.readdir(join(cdir, id, 'l')).catch(() => [] as string[])) {
      const t = await fsp.readlink(join(cdir, id, 'l', l)).catch(() => '');
      if (t) used.add(t.replace(/\/+$/, '').split('/').pop() ?? '');
    }
  }
  return used;
}

/**
 * Removes layer snapshots (`<root>/snapshots/<hex>`) whose diffID no image references and no
 * overlay mount uses, older than `graceMs`, and temp dirs of unpackers that died. Returns
 * the names removed and the bytes freed.
 */
export async function pruneSnapshots(root: string, referenced: ReadonlySet<string>, graceMs = 60_000): Promise<{ removed: string[]; bytes: number }> {
  const dir = join(root, 'snapshots');
  const used = await snapshotsInUse(root);
  const removed: string[] = [];
  let bytes = 0;
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const tmp = /^\.tmp-[0-9a-f]{12}-(\d+)-[0-9a-f]+$/.exec(name);
    if (tmp) {
      if (processAlive(Number(tmp[1]))) continue;
    } else {
      if (!/^[0-9a-f]{64}$/.test(name) || referenced.has(name) || used.has(name)) continue;
      const st = await fsp.stat(p).catch(() => undefined);
      if (!st || Date.now() - st.ctimeMs < graceMs) continue;
    }
    bytes += await diskUsage(p);
    await fsp.rm(p, { recursive: true, force: true });
    removed.push(name);
  }
  return { removed, bytes };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Bytes a directory tree takes (allocated blocks; hard links counted once). */
export async function diskUsage(path: string, seen: Set<string> = new Set()): Promise<number> {
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st) return 0;
  const key = `${st.dev}:${st.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  let n = st.blocks * 512;
  if (st.isDirectory()) {
    for (const e of await fsp.readdir(path).catch(() => [] as string[])) n += await diskUsage(join(path, e), seen);
  }
  return n;
}

/** One row of `system df`. */
export interface DfRow {
  type: string;
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

/** `system df` rows of the runtime: containers (their writable layers) and layer snapshots. */
export async function runtimeDiskUsage(root: string, referenced: ReadonlySet<string>): Promise<DfRow[]> {
  const ctr: DfRow = { type: 'Containers', total: 0, active: 0, size: 0, reclaimable: 0 };
  for (const id of await listIds(root)) {
    const info = await containerInfo(root, id).catch(() => undefined);
    if (!info) continue;
    const size = await diskUsage(join(recordPaths(root, id).dir, 'upper'));
    ctr.total++;
    ctr.size += size;
    if (LIVE.has(info.status.status)) ctr.active++;
    else ctr.reclaimable += size;
  }
  const snap: DfRow = { type: 'Layer snapshots', total: 0, active: 0, size: 0, reclaimable: 0 };
  const used = await snapshotsInUse(root);
  const dir = join(root, 'snapshots');
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const size = await diskUsage(join(dir, name));
    snap.total++;
    snap.size += size;
    if (used.has(name)) snap.active++;
    else if (!referenced.has(name)) snap.reclaimable += size;
  }
  return [ctr, snap];
}
