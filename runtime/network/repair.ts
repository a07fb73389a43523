/**
 * Network leftovers of containers that died without cleaning up, released through the
 * plugins (CNI DEL) rather than by deleting veths, rules and lease files by hand:
 *
 * - an attachment cached under `<root>/networks/cache/` whose container directory is gone:
 *   DEL with the cached ADD result, then its namespace is removed (detachNetwork);
 * - a host-local lease on one of this store's networks (`/var/lib/cni/networks/<name>/<ip>`,
 *   holding the container id) with neither a cached attachment nor the container's named
 *   namespace: DEL of the whole conflist with that id (the bridge plugin skips the missing
 *   namespace, portmap drops its chains by id, host-local frees the address). A tsbuild
 *   container always has its namespace from before ADD until after DEL, so a lease without
 *   one is never a container being set up by another process or store.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { detachNetwork, listAttachments, netnsName, releaseLease, type NetworkConfList } from './cni.js';

/** Where host-local keeps its leases (its default `dataDir`). */
export const HOST_LOCAL_DIR = '/var/lib/cni/networks';

/** What {@link repairNetworks} released. */
export interface NetworkRepair {
  /** Cached attachments of vanished containers, detached (ids). */
  detached: string[];
  /** Leases released by DEL: `network/ip (container id)`. */
  leases: string[];
  /** Failures, one line each (the rest went on). */
  errors: string[];
}

/** Releases the network leftovers of containers of this store that no longer exist. */
export async function repairNetworks(root: string, networks: readonly NetworkConfList[]): Promise<NetworkRepair> {
  const out: NetworkRepair = { detached: [], leases: [], errors: [] };
  const cached = new Set<string>();
  for (const a of await listAttachments(root)) {
    if (existsSync(join(root, 'containers', a.id))) {
      cached.add(a.id);
      continue;
    }
    try {
      await detachNetwork(root, a.id);
      out.detached.push(a.id);
    } catch (e) {
      out.errors.push(`detaching ${a.id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }
  for (const list of networks) {
    const dir = join(HOST_LOCAL_DIR, list.name);
    for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
      if (f === 'lock' || f.startsWith('last_reserved_ip')) continue;
      const text = await fsp.readFile(join(dir, f), 'utf8').catch(() => '');
      const [id = '', ifname = 'eth0'] = text.split(/\r?\n/).map((l) => l.trim());
      if (!/^[0-9a-f]{64}$/.test(id) || cached.has(id)) continue;
      if (existsSync(join('/run/netns', netnsName(id)))) continue;
      try {
        await releaseLease(list, id, ifname || 'eth0');
        out.leases.push(`${list.name}/${f} (${id.slice(0, 12)})`);
      } catch (e) {
        out.errors.push(`releasing lease ${list.name}/${f}: ${(e as Error).message}`);
      }
    }
  }
  return out;
}
