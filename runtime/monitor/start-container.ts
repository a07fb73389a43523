/**
 * `start` of a recorded container that no longer runs (exited, or whose monitor died): the
 * same container comes back under a new monitor. Its upper dir, record, log (appended to),
 * volumes and bind mounts, /etc/hostname and /etc/resolv.conf stay from its first run; the
 * overlay root is mounted again over the image's layer snapshots, the network attached again
 * (same network, names, aliases and published host ports; the address may change, so
 * /etc/hosts is written again), and the restart policy and healthcheck apply as before. A
 * container run with --rm is gone once it exited, as with docker.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ImageStore } from '../../src/oci/store/image-store.js';
import { containerInfo, lockRecord, readStatus, recordPaths, releaseResources, writeRecord, writeStatus, type ContainerRecord } from '../container/records.js';
import { RuntimeError } from '../errors.js';
import { announceNetwork, attachNetwork, containerAddress } from '../network/cni.js';
import { hostsContent } from '../network/etc-files.js';
import { STOP_MARKER } from './control.js';

/** What {@link startContainer} did. */
export interface StartResult {
  /** False when the container already ran (docker start is then a no-op). */
  started: boolean;
}

/** Mounts the container's overlay root again: its kept upper dir over the image's layers. */
async function remountRootfs(root: string, rec: ContainerRecord): Promise<void> {
  const p = recordPaths(root, rec.id);
  const [{ SnapshotStore }, { planOverlay }, { mountOverlay, unmount }] = await Promise.all([
    import('../rootfs/snapshots.js'), import('../rootfs/overlay.js'), import('../rootfs/prepare.js'),
  ]);
  let image;
  try {
    ({ image } = await (await ImageStore.open(root)).imageFor(rec.imageId ?? rec.image));
  } catch (e) {
    throw new RuntimeError('INVALID_STATE', `starting container ${rec.name}: its image ${rec.image} is no longer in the local store`, { cause: e });
  }
  const snapshots = new SnapshotStore(root);
  const lowers: string[] = [];
  for (const l of await image.layers()) lowers.push(await snapshots.ensure(l));
  if (!lowers.length) {
    const empty = join(p.dir, 'empty');
    await fsp.mkdir(empty, { recursive: true });
    lowers.push(empty);
  }
  // the same plan as the first run (never volatile: a kept container's upper is synced)
  const plan = planOverlay(lowers, p.dir);
  unmount(plan.target);
  await fsp.rm(join(p.dir, 'l'), { recursive: true, force: true });
  await mountOverlay(plan);
}

/** Attaches the container's CNI network again and rewrites its /etc/hosts for the new address. */
async function reattachNetwork(root: string, rec: ContainerRecord): Promise<ContainerRecord> {
  const net = rec.network;
  if (!net || net === 'none' || net === 'host') return rec;
  const hostsFile = join(recordPaths(root, rec.id).dir, 'hosts');
  const att = await attachNetwork(root, rec.id, net, rec.ports ?? [], { names: [rec.name, ...(rec.networkAliases ?? [])], hostsFile });
  const address = containerAddress(att);
  await fsp.writeFile(hostsFile, hostsContent({
    ...(address ? { address } : {}), hostname: rec.hostname, ...(rec.domainname ? { domainname: rec.domainname } : {}), extraHosts: rec.extraHosts ?? [],
  }));
  await announceNetwork(root, net);
  const { address: _old, ...rest } = rec;
  return { ...rest, ports: att.ports, ...(address ? { address } : {}) };
}

/**
 * Starts container `id` again (docker start). A running, paused or restarting container, or
 * one still being set up by its run, is left alone (`started: false`). CONTAINER_NOT_FOUND
 * when there is no such container. On a failed start the container stays exited with the
 * error recorded, and nothing of the attempt stays mounted or attached.
 */
export async function startContainer(root: string, id: string, opts: { signal?: AbortSignal } = {}): Promise<StartResult> {
  // the live status: a container whose monitor died is recorded as exited (and released) here
  const i = await containerInfo(root, id);
  if (!i) throw new RuntimeError('CONTAINER_NOT_FOUND', `no such container: ${id}`);
  // created: a run (or start) still sets it up; a dead owner would have made it exited above
  if (i.status.status !== 'exited') return { started: false };
  const release = await lockRecord(root, id);
  let rec = i.record;
  try {
    const prev = await readStatus(root, id);
    if (!prev) throw new RuntimeError('CONTAINER_NOT_FOUND', `no such container: ${id}`);
    // started meanwhile by another start
    if (prev.status !== 'exited') return { started: false };
    try {
      await fsp.rm(join(recordPaths(root, id).dir, STOP_MARKER), { force: true });
      await remountRootfs(root, rec);
      opts.signal?.throwIfAborted();
      rec = await reattachNetwork(root, rec);
      await writeRecord(root, rec);
      opts.signal?.throwIfAborted();
      const { startMonitor } = await import('../run.js');
      await startMonitor(root, id, opts.signal);
    } catch (e) {
      await releaseResources(root, rec).catch(() => undefined);
      await writeStatus(root, id, { ...prev, status: 'exited', error: (e as Error).message });
      throw e;
    }
    return { started: true };
  } finally {
    await release().catch(() => undefined);
  }
}
