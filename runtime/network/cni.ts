/**
 * Container networking through the standard CNI plugins (containernetworking-plugins), run
 * per the CNI spec: each plugin of a network's conflist is executed with CNI_COMMAND,
 * CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH in its environment and its network config
 * (name, cniVersion, runtimeConfig, prevResult) on stdin. The ADD result is cached under
 * `<root>/networks/cache/` so DEL gets what ADD returned. The container's network namespace
 * is a named one (`ip netns add`), joined by the helper through its path.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { lockContainer } from '../container/state.js';
import { RuntimeError } from '../errors.js';
import { syncPeerHosts, type NetworkPeer } from './etc-files.js';
import { allocateHostPorts } from './ports.js';

/** The default network's name, bridge and subnet (a /24 few LANs use). */
export const DEFAULT_NETWORK = 'tsbuild';
export const DEFAULT_BRIDGE = 'tsbuild0';
export const DEFAULT_SUBNET = '10.88.213.0/24';

/** Where the plugins are: $CNI_PATH, else Debian's and upstream's directories. */
export function cniPath(): string {
  return process.env.TSBUILD_CNI_PATH ?? ['/usr/lib/cni', '/opt/cni/bin'].filter((d) => existsSync(d)).join(':');
}

/** A published port (docker -p). */
export interface PortMapping {
  hostIP?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** A CNI network configuration list. */
export interface NetworkConfList {
  cniVersion: string;
  name: string;
  plugins: ({ type: string } & Record<string, unknown>)[];
}

/** The default network: bridge tsbuild0 with masquerade, host-local IPAM, portmap, firewall. */
export function defaultConfList(): NetworkConfList {
  return {
    cniVersion: '1.0.0',
    name: DEFAULT_NETWORK,
    plugins: [
      {
        type: 'bridge', bridge: DEFAULT_BRIDGE, isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: DEFAULT_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall' },
    ],
  };
}

/** Conflists live in `<root>/networks/<name>.conflist`; the default one is written on first use. */
export async function loadNetwork(root: string, name: string): Promise<NetworkConfList> {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new RuntimeError('INVALID_SPEC', `invalid network name ${JSON.stringify(name)}`);
  const file = join(root, 'networks', `${name}.conflist`);
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as NetworkConfList;
  } catch (e) {
    if (name !== DEFAULT_NETWORK) throw new RuntimeError('INVALID_SPEC', `network ${name} not found (no ${file})`, { cause: e });
  }
  const conf = defaultConfList();
  await fsp.mkdir(join(root, 'networks'), { recursive: true });
  await fsp.writeFile(file, `${JSON.stringify(conf, null, 2)}\n`);
  return conf;
}

interface CniError { code?: number; msg?: string; details?: string }

/** Runs one plugin; resolves with its parsed stdout (or undefined when empty). */
function execPlugin(type: string, command: 'ADD' | 'DEL' | 'CHECK', id: string, netns: string, ifname: string, conf: unknown): Promise<unknown> {
  const path = cniPath();
  const bin = path.split(':').map((d) => join(d, type)).find((p) => existsSync(p));
  if (!bin) return Promise.reject(new RuntimeError('NOT_SUPPORTED', `CNI plugin ${type} not found in ${path || 'any plugin directory'} (install containernetworking-plugins)`));
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: ifname, CNI_PATH: path },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new RuntimeError('SETUP_FAILED', `running CNI plugin ${type}`, { cause: e, step: 'network' })));
    child.on('close', (code) => {
      const text = Buffer.concat(out).toString('utf8').trim();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (code !== 0) {
        const e = (parsed ?? {}) as CniError;
        const why = e.msg ? `${e.msg}${e.details ? `: ${e.details}` : ''}` : (Buffer.concat(err).toString('utf8').trim() || text || `exit status ${code}`);
        reject(new RuntimeError('SETUP_FAILED', `CNI plugin ${type} ${command} failed: ${why}`, { step: 'network' }));
        return;
      }
      resolve(parsed);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(conf));
  });
}

function pluginConf(list: NetworkConfList, plugin: NetworkConfList['plugins'][number], ports: PortMapping[], prevResult: unknown): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const caps = plugin.capabilities as Record<string, boolean> | undefined;
  if (caps?.portMappings) conf.runtimeConfig = { portMappings: ports };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** What ADD gave: the container's addresses and what DEL needs. */
export interface Attachment {
  network: string;
  netns: string;
  ifname: string;
  ports: PortMapping[];
  result: { ips?: { address: string; gateway?: string }[]; interfaces?: { name: string; sandbox?: string }[] } & Record<string, unknown>;
  /** Names the other containers of a user network resolve it by (container name, then --network-alias). */
  names?: string[];
  /** The container's hosts file on the host, kept up to date with its peers on a user network. */
  hostsFile?: string;
}

/** What {@link attachNetwork} records besides the ports. */
export interface AttachOptions {
  names?: string[];
  hostsFile?: string;
}

function cacheFile(root: string, id: string): string {
  return join(root, 'networks', 'cache', `${id}.json`);
}

async function run(cmd: string, args: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${Buffer.concat(err).toString('utf8').trim() || `exit status ${code}`}`))));
  });
}

/** The named network namespace of a container. */
export function netnsName(id: string): string {
  return `tsbuild-${id.slice(0, 16)}`;
}

/** Every attachment recorded under `<root>/networks/cache/` (containers attached now, or being attached). */
export async function listAttachments(root: string): Promise<(Attachment & { id: string })[]> {
  const dir = join(root, 'networks', 'cache');
  const out: (Attachment & { id: string })[] = [];
  for (const f of (await fsp.readdir(dir).catch(() => [] as string[])).sort()) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push({ ...(JSON.parse(await fsp.readFile(join(dir, f), 'utf8')) as Attachment), id: f.slice(0, -5) });
    } catch {
      /* being written or removed */
    }
  }
  return out;
}

/**
 * Creates the container's network namespace and attaches it to `network` (CNI ADD through
 * the conflist). Host ports are checked and picked first (ports.ts): a port in use fails
 * before anything is made. On a later failure everything done so far is undone (DEL,
 * namespace removed). The returned attachment's `ports` carry the host ports picked.
 */
export async function attachNetwork(root: string, id: string, network: string, asked: PortMapping[], opts: AttachOptions = {}): Promise<Attachment> {
  const list = await loadNetwork(root, network);
  // host ports are picked and recorded under one lock, so two runs of this store never pick the same
  let unlock: (() => Promise<void>) | undefined;
  if (asked.length) {
    await fsp.mkdir(join(root, 'networks', 'locks', '.ports'), { recursive: true });
    unlock = await lockContainer(join(root, 'networks', 'locks'), '.ports', 30_000);
  }
  const ns = netnsName(id);
  const netns = `/run/netns/${ns}`;
  let att: Attachment;
  let made = false;
  try {
    const taken = new Map<string, string>();
    for (const a of await listAttachments(root)) for (const p of a.ports ?? []) taken.set(`${p.hostPort}/${p.protocol}`, a.id.slice(0, 12));
    const ports = await allocateHostPorts(asked, taken);
    await run('ip', ['netns', 'add', ns]).catch((e: unknown) => {
      throw new RuntimeError('SETUP_FAILED', `creating the network namespace of container ${id.slice(0, 12)}`, { cause: e, step: 'network' });
    });
    made = true;
    att = { network, netns, ifname: 'eth0', ports, result: {}, ...(opts.names?.length ? { names: opts.names } : {}), ...(opts.hostsFile ? { hostsFile: opts.hostsFile } : {}) };
    await fsp.mkdir(join(root, 'networks', 'cache'), { recursive: true });
    // written before ADD: a crash in between still lets DEL clean up
    await fsp.writeFile(cacheFile(root, id), JSON.stringify(att));
  } catch (e) {
    if (made) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    throw e;
  } finally {
    await unlock?.();
  }
  try {
    // lo up through the loopback plugin (nothing to undo: it goes with the namespace)
    await execPlugin('loopback', 'ADD', id, netns, 'lo', { cniVersion: list.cniVersion, name: list.name, type: 'loopback' });
    let prev: unknown;
    for (const p of list.plugins) prev = (await execPlugin(p.type, 'ADD', id, netns, att.ifname, pluginConf(list, p, att.ports, prev))) ?? prev;
    att.result = (prev ?? {}) as Attachment['result'];
    await fsp.writeFile(cacheFile(root, id), JSON.stringify(att));
    return att;
  } catch (e) {
    await detachNetwork(root, id).catch(() => undefined);
    throw e;
  }
}

/** CNI DEL (plugins in reverse, with the cached ADD result), then removes the namespace. Idempotent. */
export async function detachNetwork(root: string, id: string): Promise<void> {
  let att: Attachment | undefined;
  try {
    att = JSON.parse(await fsp.readFile(cacheFile(root, id), 'utf8')) as Attachment;
  } catch {
    return;
  }
  const errors: unknown[] = [];
  const list = await loadNetwork(root, att.network).catch(() => undefined);
  if (list) {
    const prev = att.result && Object.keys(att.result).length ? att.result : undefined;
    for (const p of [...list.plugins].reverse()) {
      await execPlugin(p.type, 'DEL', id, att.netns, att.ifname, pluginConf(list, p, att.ports, prev)).catch((e: unknown) => errors.push(e));
    }
  }
  if (existsSync(att.netns)) await run('ip', ['netns', 'del', netnsName(id)]).catch((e: unknown) => errors.push(e));
  await fsp.rm(cacheFile(root, id), { force: true });
  // the others on a user network forget its name
  if (att.network !== DEFAULT_NETWORK) await announceNetwork(root, att.network).catch(() => undefined);
  if (errors.length) throw new RuntimeError('SETUP_FAILED', `detaching container ${id.slice(0, 12)} from network ${att.network}`, { cause: errors[0], step: 'network' });
}

/** The containers attached to `network` now, as their peers' hosts files list them. */
async function networkPeers(root: string, network: string): Promise<NetworkPeer[]> {
  const out: NetworkPeer[] = [];
  for (const a of await listAttachments(root)) {
    const address = a.network === network ? containerAddress(a) : undefined;
    if (address) out.push({ id: a.id, address, names: a.names ?? [a.id.slice(0, 12)], ...(a.hostsFile ? { hostsFile: a.hostsFile } : {}) });
  }
  return out;
}

/**
 * Rewrites the peer section of the hosts file of every container on a user network (after a
 * container joined or left it). The default network does not resolve names, as docker's
 * default bridge; there this does nothing.
 */
export async function announceNetwork(root: string, network: string): Promise<void> {
  if (network === DEFAULT_NETWORK) return;
  await syncPeerHosts(root, network, () => networkPeers(root, network));
}

/** The gateway of the container's network (the bridge's address): docker's `host-gateway`. */
export function networkGateway(att: Attachment): string | undefined {
  return att.result.ips?.find((i) => !i.address.includes(':') && i.gateway)?.gateway;
}

/**
 * CNI DEL of every plugin of `list` (in reverse) for a container whose attachment record is
 * lost: no cached result, the namespace path as it would be. Plugins treat DEL as idempotent
 * and release what they hold by container id (host-local lease, portmap chains).
 */
export async function releaseLease(list: NetworkConfList, id: string, ip: string, ifname = 'eth0'): Promise<void> {
  const errors: unknown[] = [];
  const prefix = bridgeOf(list).subnet?.split('/')[1] ?? '32';
  // what ADD would have returned, as far as DEL needs it: the firewall plugin drops its rules by address
  const prev = { cniVersion: list.cniVersion, ips: [{ address: `${ip}/${prefix}` }] };
  // portmap skips DEL without mappings; its chains are named by container id, so any mapping will do
  const anyPort: PortMapping[] = [{ hostPort: 1, containerPort: 1, protocol: 'tcp' }];
  for (const p of [...list.plugins].reverse()) {
    await execPlugin(p.type, 'DEL', id, `/run/netns/${netnsName(id)}`, ifname, pluginConf(list, p, anyPort, prev)).catch((e: unknown) => errors.push(e));
  }
  if (errors.length) throw errors[0];
}

/** Every conflist of this store (`<root>/networks/*.conflist`). */
export async function listConfLists(root: string): Promise<NetworkConfList[]> {
  const dir = join(root, 'networks');
  const out: NetworkConfList[] = [];
  for (const f of (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.conflist')).sort()) {
    try {
      out.push(JSON.parse(await fsp.readFile(join(dir, f), 'utf8')) as NetworkConfList);
    } catch {
      /* unreadable: network ls reports it */
    }
  }
  return out;
}

/** The container's IPv4 address on its network (without prefix length). */
export function containerAddress(att: Attachment): string | undefined {
  return att.result.ips?.find((i) => !i.address.includes(':'))?.address.split('/')[0];
}

/** Summary of a network (`network ls`). */
export interface NetworkInfo {
  name: string;
  bridge?: string;
  subnet?: string;
  /** Containers attached now (ids). */
  containers: string[];
}

function bridgeOf(list: NetworkConfList): { bridge?: string; subnet?: string } {
  const b = list.plugins.find((p) => p.type === 'bridge') as { bridge?: string; ipam?: { ranges?: { subnet?: string }[][]; subnet?: string } } | undefined;
  const subnet = b?.ipam?.ranges?.[0]?.[0]?.subnet ?? b?.ipam?.subnet;
  return { ...(b?.bridge ? { bridge: b.bridge } : {}), ...(subnet ? { subnet } : {}) };
}

/** Every network under `<root>/networks/` (the default one included once used), with its attached containers. */
export async function listNetworks(root: string): Promise<NetworkInfo[]> {
  const dir = join(root, 'networks');
  const files = (await fsp.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.conflist')).sort();
  const attached = new Map<string, string[]>();
  for (const f of await fsp.readdir(join(dir, 'cache')).catch(() => [] as string[])) {
    const att = JSON.parse(await fsp.readFile(join(dir, 'cache', f), 'utf8').catch(() => '{}')) as Partial<Attachment>;
    if (att.network) attached.set(att.network, [...(attached.get(att.network) ?? []), f.replace(/\.json$/, '')]);
  }
  const out: NetworkInfo[] = [];
  for (const f of files) {
    const list = JSON.parse(await fsp.readFile(join(dir, f), 'utf8')) as NetworkConfList;
    out.push({ name: list.name, ...bridgeOf(list), containers: attached.get(list.name) ?? [] });
  }
  return out;
}

/**
 * Writes a user network's conflist: its own bridge (`tsb-NAME`, or a hash when NAME is long)
 * and subnet (given, or the next free 10.88.N.0/24 after the default one).
 */
export async function createNetwork(root: string, name: string, opts: { subnet?: string } = {}): Promise<NetworkConfList> {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || ['none', 'host', 'bridge', 'default'].includes(name)) throw new RuntimeError('INVALID_SPEC', `invalid network name ${JSON.stringify(name)}`);
  if (opts.subnet && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(opts.subnet)) throw new RuntimeError('INVALID_SPEC', `invalid subnet ${JSON.stringify(opts.subnet)}: expected a.b.c.d/len`);
  await loadNetwork(root, DEFAULT_NETWORK);
  const file = join(root, 'networks', `${name}.conflist`);
  if (existsSync(file)) throw new RuntimeError('CONTAINER_EXISTS', `network ${name} already exists`);
  const used = new Set((await listNetworks(root)).map((n) => n.subnet));
  // a subnet the host already routes (another store's network, a VPN, docker) is not picked
  const routed = await hostRoutes();
  let subnet = opts.subnet;
  for (let n = 214; !subnet && n < 255; n++) if (!used.has(`10.88.${n}.0/24`) && !routed.has(`10.88.${n}.0/24`)) subnet = `10.88.${n}.0/24`;
  if (!subnet) throw new RuntimeError('INVALID_SPEC', 'no free subnet left in 10.88.214.0-10.88.254.0; pass --subnet');
  if (used.has(subnet)) throw new RuntimeError('INVALID_SPEC', `subnet ${subnet} is used by another network`);
  const { createHash } = await import('node:crypto');
  const bridge = name.length <= 11 ? `tsb-${name}` : `tsb-${createHash('sha256').update(name).digest('hex').slice(0, 11)}`;
  const conf = defaultConfList();
  conf.name = name;
  const b = conf.plugins[0]!;
  b.bridge = bridge;
  b.ipam = { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] };
  await fsp.writeFile(file, `${JSON.stringify(conf, null, 2)}\n`, { flag: 'wx' });
  return conf;
}

/** IPv4 prefixes the host has routes for (`a.b.c.d/len`). */
async function hostRoutes(): Promise<Set<string>> {
  const text = await fsp.readFile('/proc/net/route', 'utf8').catch(() => '');
  const out = new Set<string>();
  const ip = (hex: string) => [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] === '00000000') continue;
    const bits = [...parseInt(f[7]!, 16).toString(2)].filter((b) => b === '1').length;
    out.add(`${ip(f[1]!)}/${bits}`);
  }
  return out;
}

/** Removes a network that no container uses: its conflist and its bridge. */
export async function removeNetwork(root: string, name: string): Promise<void> {
  const info = (await listNetworks(root)).find((n) => n.name === name);
  if (!info) throw new RuntimeError('INVALID_SPEC', `network ${name} not found`);
  if (info.containers.length) throw new RuntimeError('INVALID_STATE', `network ${name} is in use by container ${info.containers.map((c) => c.slice(0, 12)).join(', ')}`);
  if (info.bridge && existsSync(join('/sys/class/net', info.bridge))) await run('ip', ['link', 'del', info.bridge]);
  await fsp.rm(join(root, 'networks', `${name}.conflist`), { force: true });
  await fsp.rm(join(root, 'networks', 'locks', name), { recursive: true, force: true });
  // host-local's directory, once it holds no lease (only its lock and last-reserved markers)
  const leases = join('/var/lib/cni/networks', name);
  const left = await fsp.readdir(leases).catch(() => undefined);
  if (left && left.every((f) => f === 'lock' || f.startsWith('last_reserved_ip'))) await fsp.rm(leases, { recursive: true, force: true });
}
