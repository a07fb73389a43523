import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { humanSize } from '../../oci/store/describe.js';
import { UsageError } from '../../util/errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function confirm(c: CliContext, text: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError('INVALID_ARGUMENT', 'system prune asks for confirmation on a terminal; pass -f to prune without asking');
  const rl = createInterface({ input: process.stdin, output: c.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${text}\nAre you sure you want to continue? [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

interface PruneFlags { all?: boolean; force?: boolean; volumes?: boolean; cgroupParent?: string[]; format: string }

/**
 * `tsbuild system prune`: removes stopped containers, repairs the leftovers of crashed ones
 * (runtime/system/prune.ts), removes dangling (with -a: unused) images and unreferenced blobs,
 * unreferenced layer snapshots and, with --volumes, unused anonymous volumes.
 * `tsbuild system df`: disk use by images, containers, volumes and layer snapshots.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.description('disk use and cleanup of the store');
  cmd
    .command('prune')
    .description('remove stopped containers, leftovers of crashed ones, dangling images, build cache, unused blobs and snapshots')
    .option('-a, --all', 'remove every image no container uses, not only dangling ones')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--volumes', 'also remove unused anonymous volumes')
    .option('--cgroup-parent <path>', 'also sweep empty container cgroups under this parent (repeatable; tsbuild and tsbuild-build always)', collect)
    .option('--format <fmt>', 'text or json', 'text')
    .action(async (o: PruneFlags) => {
      const c = ctx();
      if (!o.force) {
        const ok = await confirm(c, `WARNING! This will remove:
  - all stopped containers and the leftovers of crashed ones (mounts, cgroups, network attachments)
  - ${o.all ? 'all images without at least one container associated to them' : 'all dangling images'}, unreferenced blobs and layer snapshots
  - ${o.all ? 'all build cache' : 'unused build cache'}${o.volumes ? '\n  - all anonymous volumes not used by at least one container' : ''}`);
        if (!ok) return;
      }
      const { pruneContainers, pruneSnapshots, referencedDiffIds } = await import('../../../runtime/system/prune.js');
      const { listIds, readRecord } = await import('../../../runtime/container/records.js');
      const { ImageStore } = await import('../../oci/store/image-store.js');
      const report = await pruneContainers(c.root, { ...(o.cgroupParent ? { cgroupParents: o.cgroupParent } : {}), log: c.logger });
      let volumes: { removed: string[]; reclaimed: number } = { removed: [], reclaimed: 0 };
      if (o.volumes) {
        const { pruneVolumes } = await import('../../../runtime/volumes/store.js');
        volumes = await pruneVolumes(c.root);
      }
      // images: dangling ones (-a: every one) that no remaining container was made from
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const inUse = new Set<string>();
      for (const id of await listIds(c.root)) {
        const rec = await readRecord(c.root, id);
        if (rec?.imageId) inUse.add(rec.imageId);
      }
      const kept = new Set<string>(await store.gcRoots());
      const images = [...new Set((await store.list()).filter((r) => (o.all || r.name === '') && !inUse.has(r.id) && !kept.has(r.id) && !kept.has(r.descriptor.digest)).map((r) => r.id))];
      for (const id of images) await store.removeId(id);
      // build cache (docker system prune does it too): step records and cache mounts; -a also those of local images' layers
      const { pruneBuildCache } = await import('../../../builder/solver/prune.js');
      const cache = await pruneBuildCache(c.root, store, o.all ? { all: true } : {});
      const gc = await store.gc();
      const snaps = await pruneSnapshots(c.root, await referencedDiffIds(store));
      const total = gc.bytes + snaps.bytes + volumes.reclaimed + cache.reclaimed;
      if (o.format === 'json') {
        c.stdout.write(`${JSON.stringify({
          deletedContainers: report.removed, repairedContainers: report.repaired,
          network: { detached: report.network.detached, leases: report.network.leases, rules: report.network.rules },
          unmounted: report.mounts, removedCgroups: report.cgroups, deletedImages: images, deletedBuildCache: cache.removed.map((e) => e.id), deletedBlobs: gc.removed.length,
          deletedSnapshots: snaps.removed, deletedVolumes: volumes.removed, reclaimedBytes: total, errors: report.errors,
        })}\n`);
      } else {
        const section = (title: string, items: readonly string[]) => {
          if (items.length) c.stdout.write(`${title}:\n${items.map((i) => `${i}\n`).join('')}\n`);
        };
        section('Deleted Containers', report.removed);
        section('Repaired Containers (owner and process dead; state, mounts, cgroups and network released)', report.repaired);
        section('Released Network Leftovers', [...report.network.detached.map((id) => `attachment ${id}`), ...report.network.leases.map((l) => `lease ${l}`), ...report.network.rules.map((id) => `nat rules of ${id}`)]);
        section('Unmounted', report.mounts);
        section('Removed Cgroups', report.cgroups);
        section('Deleted Volumes', volumes.removed);
        section('Deleted Images', images.map((i) => `deleted: ${i}`));
        section('Deleted Build Cache Objects', cache.removed.map((e) => e.id));
        section('Deleted Layer Snapshots', snaps.removed);
        c.stdout.write(`Total reclaimed space: ${humanSize(total)}\n`);
      }
      for (const e of report.errors) c.logger.warn(e);
    });
  cmd
    .command('df')
    .description('show disk use of images, containers, local volumes, layer snapshots and build cache')
    .option('--format <fmt>', 'table or json', 'table')
    .action(async (o: { format: string }) => {
      const c = ctx();
      const { runtimeDiskUsage, referencedDiffIds, diskUsage } = await import('../../../runtime/system/prune.js');
      const { listIds, readRecord } = await import('../../../runtime/container/records.js');
      const { ImageStore } = await import('../../oci/store/image-store.js');
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const inUse = new Set<string>();
      for (const id of await listIds(c.root)) {
        const rec = await readRecord(c.root, id);
        if (rec?.imageId) inUse.add(rec.imageId);
      }
      const records = await store.list();
      const ids = [...new Set(records.map((r) => r.id))];
      const blobs = await diskUsage(join(c.root, 'blobs'));
      const reclaim = await store.gc({ dryRun: true });
      // a dangling image no container uses is reclaimable too: what gc would free after removing it
      let danglingBytes = 0;
      const dangling = records.filter((r) => r.name === '' && !inUse.has(r.id));
      if (dangling.length) {
        const keep = new Set<string>();
        for (const r of records.filter((x) => !dangling.includes(x))) for (const d of await store.graphDigests(r.descriptor)) keep.add(d);
        const gone = new Set<string>();
        for (const r of dangling) for (const d of await store.graphDigests(r.descriptor)) if (!keep.has(d)) gone.add(d);
        for (const d of gone) danglingBytes += await stat(join(c.root, 'blobs', ...d.split(':'))).then((s) => s.size, () => 0);
      }
      const rows = [
        { type: 'Images', total: ids.length, active: ids.filter((i) => inUse.has(i)).length, size: blobs, reclaimable: reclaim.bytes + danglingBytes },
        ...(await runtimeDiskUsage(c.root, await referencedDiffIds(store))),
      ];
      {
        const { pruneBuildCache } = await import('../../../builder/solver/prune.js');
        const cache = await pruneBuildCache(c.root, store, { all: true, dryRun: true });
        const size = cache.removed.reduce((n, e) => n + e.size, 0);
        rows.push({ type: 'Build Cache', total: cache.removed.length, active: 0, size, reclaimable: size });
      }
      try {
        const { listVolumes, volumeUsers } = await import('../../../runtime/volumes/store.js');
        const users = await volumeUsers(c.root);
        const row = { type: 'Local Volumes', total: 0, active: 0, size: 0, reclaimable: 0 };
        for (const v of await listVolumes(c.root)) {
          const s = await diskUsage(v.Mountpoint);
          row.total++;
          row.size += s;
          if ((users.get(v.Name) ?? []).length) row.active++;
          else row.reclaimable += s;
        }
        rows.splice(2, 0, row);
      } catch (e) {
        c.logger.debug(`volumes: ${(e as Error).message}`);
      }
      if (o.format === 'json') {
        for (const r of rows) c.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      c.stdout.write(`${'TYPE'.padEnd(18)}${'TOTAL'.padEnd(10)}${'ACTIVE'.padEnd(10)}${'SIZE'.padEnd(12)}RECLAIMABLE\n`);
      for (const r of rows) {
        const pct = r.size ? ` (${Math.round((r.reclaimable / r.size) * 100)}%)` : '';
        c.stdout.write(`${r.type.padEnd(18)}${String(r.total).padEnd(10)}${String(r.active).padEnd(10)}${humanSize(r.size).padEnd(12)}${humanSize(r.reclaimable)}${pct}\n`);
      }
    });
}
