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
 *   one is never a container being set up by another process or store;
 * - NAT rules the plugins tagged with a network of this store and a container id (portmap's
 *   DNAT jumps, the bridge's masquerade chain) whose container has neither: DEL as above with
 *   the address from the rule. The bridge plugin can only tear masquerade down while the
 *   namespace exists; without it that chain is removed here, found by the plugin's comment.
 */
import { spawn } from 'node:child_process';
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
  /** Containers whose leftover NAT rules (portmap, masquerade) were removed. */
  rules: string[];
  /** Failures, one line each (the rest went on). */
  errors: string[];
}

/** Releases the network leftovers of containers of this store that no longer exist. */
export async function repairNetworks(root: string, networks: readonly NetworkConfList[]): Promise<NetworkRepair> {
  const out: NetworkRepair = { detached: [], leases: [], rules: [], errors: [] };
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
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(f)) continue;
      const text = await fsp.readFile(join(dir, f), 'utf8').catch(() => '');
      const [id = '', ifname = 'eth0'] = text.split(/\r?\n/).map((l) => l.trim());
      if (!/^[0-9a-f]{64}$/.test(id) || cached.has(id)) continue;
      if (existsSync(join('/run/netns', netnsName(id)))) continue;
      try {
        await releaseLease(list, id, f, ifname || 'eth0');
        out.leases.push(`${list.name}/${f} (${id.slice(0, 12)})`);
      } catch (e) {
        out.errors.push(`releasing lease ${list.name}/${f}: ${(e as Error).message}`);
      }
    }
  }
  // NAT rules of containers gone without DEL (or whose DEL could not reach the namespace)
  const byName = new Map(networks.map((n) => [n.name, n]));
  for (const [id, r] of await taggedNatRules()) {
    const list = byName.get(r.network);
    if (!list || cached.has(id) || existsSync(join('/run/netns', netnsName(id)))) continue;
    try {
      if (r.ip) await releaseLease(list, id, r.ip).catch(() => undefined);
      await dropMasquerade(id);
      out.rules.push(id);
    } catch (e) {
      out.errors.push(`removing the NAT rules of ${id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }
  return out;
}

function iptables(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('iptables', ['-w', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`iptables ${args.join(' ')}: ${Buffer.concat(err).toString('utf8').trim() || `exit status ${code}`}`))));
  });
}

const TAG = /--comment "(?:dnat )?name: \\"([^"\\]+)\\" id: \\"([0-9a-f]{64})\\""/;

/** Container ids named by CNI comments in the nat table's entry chains, with their network and address. */
async function taggedNatRules(): Promise<Map<string, { network: string; ip?: string }>> {
  const out = new Map<string, { network: string; ip?: string }>();
  const text = await iptables(['-t', 'nat', '-S']).catch(() => '');
  for (const line of text.split('\n')) {
    if (!/^-A (POSTROUTING|CNI-HOSTPORT-DNAT) /.test(line)) continue;
    const m = TAG.exec(line);
    if (!m) continue;
    const e = out.get(m[2]!) ?? { network: m[1]! };
    const ip = /^-A POSTROUTING -s (\d+\.\d+\.\d+\.\d+)\/32 /.exec(line)?.[1];
    if (ip) e.ip = ip;
    out.set(m[2]!, e);
  }
  return out;
}

/** Removes the bridge plugin's masquerade jump and chain of a container (POSTROUTING rules carrying its id). */
async function dropMasquerade(id: string): Promise<void> {
  const listing = await iptables(['-t', 'nat', '-L', 'POSTROUTING', '--line-numbers', '-n']);
  const hits: { n: number; chain: string }[] = [];
  for (const line of listing.split('\n')) {
    if (!line.includes(`id: "${id}"`)) continue;
    const f = line.trim().split(/\s+/);
    hits.push({ n: Number(f[0]), chain: f[1]! });
  }
  for (const h of hits.sort((a, b) => b.n - a.n)) {
    await iptables(['-t', 'nat', '-D', 'POSTROUTING', String(h.n)]);
    if (h.chain.startsWith('CNI-')) {
      await iptables(['-t', 'nat', '-F', h.chain]).catch(() => undefined);
      await iptables(['-t', 'nat', '-X', h.chain]).catch(() => undefined);
    }
  }
}
