/**
 * The per-container /etc/hosts and /etc/resolv.conf (docker's rules), and the name resolution
 * of user networks without a DNS server (podman without aardvark-dns): every running container
 * on a user network has the other containers of that network (address, name, aliases) in a
 * marked section at the end of its hosts file. The files are bind-mounted into the containers,
 * so they are rewritten in place (same inode), never replaced by a rename.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { lockContainer } from '../container/state.js';
import { RuntimeError } from '../errors.js';

/** /etc/hosts defaults of a container without host networking (docker's). */
export const DEFAULT_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

/** Where docker falls back to when the host only has local resolvers. */
const FALLBACK_DNS = ['8.8.8.8', '8.8.4.4'];

/** An `--add-host name:ip` entry (ip already resolved from `host-gateway`). */
export interface ExtraHost {
  name: string;
  ip: string;
}

/** What the container's own hosts file holds. */
export interface HostsOptions {
  /** The host's /etc/hosts (host networking: used as the base instead of the defaults). */
  hostHosts?: string;
  /** The container's address on its network. */
  address?: string;
  hostname: string;
  domainname?: string;
  extraHosts?: readonly ExtraHost[];
}

/** The container's /etc/hosts: defaults (or the host's), --add-host entries, then its own name. */
export function hostsContent(o: HostsOptions): string {
  let text = o.hostHosts ?? DEFAULT_HOSTS;
  if (text && !text.endsWith('\n')) text += '\n';
  for (const h of o.extraHosts ?? []) text += `${h.ip}\t${h.name}\n`;
  if (o.address) text += `${o.address}\t${o.domainname ? `${o.hostname}.${o.domainname} ` : ''}${o.hostname}\n`;
  return text;
}

/** DNS settings of `run` (docker's --dns, --dns-search, --dns-option). */
export interface DnsOptions {
  servers?: readonly string[];
  search?: readonly string[];
  options?: readonly string[];
  /** Host networking (or none): the host's local resolvers are kept, and the host's file as is when nothing is overridden. */
  hostNetwork?: boolean;
}

/**
 * The container's /etc/resolv.conf from the host's: nameservers on loopback are dropped unless
 * the container shares the host network (docker falls back to 8.8.8.8 and 8.8.4.4 when none
 * is left); --dns replaces the nameservers, --dns-search the search list (`.` clears it),
 * --dns-option the options. Other lines of the host's file are kept.
 */
export function resolvConfContent(hostText: string, o: DnsOptions = {}): string {
  if (o.hostNetwork && !o.servers?.length && !o.search?.length && !o.options?.length) return hostText;
  const lines = hostText.split('\n');
  const keep: string[] = [];
  let servers: string[] = [];
  let search: string[] | undefined;
  let options: string[] | undefined;
  for (const l of lines) {
    const t = l.trim();
    const f = t.split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) servers.push(f[1]);
    else if ((f[0] === 'search' || f[0] === 'domain') && f.length > 1) search = f.slice(1);
    else if (f[0] === 'options' && f.length > 1) options = [...(options ?? []), ...f.slice(1)];
    else if (t) keep.push(l);
  }
  if (!o.hostNetwork) {
    servers = servers.filter((s) => !/^127\./.test(s) && s !== '::1');
    if (!servers.length) servers = [...FALLBACK_DNS];
  }
  if (o.servers?.length) servers = [...o.servers];
  if (o.search?.length) search = o.search.filter((s) => s !== '.');
  if (o.options?.length) options = [...o.options];
  let out = keep.filter((l) => l.trim().startsWith('#')).join('\n');
  if (out) out += '\n';
  if (search?.length) out += `search ${search.join(' ')}\n`;
  for (const s of servers) out += `nameserver ${s}\n`;
  if (options?.length) out += `options ${options.join(' ')}\n`;
  return out;
}

/** One container of a network as the hosts files of the others show it. */
export interface NetworkPeer {
  id: string;
  address: string;
  /** Container name first, then --network-alias names. */
  names: string[];
  /** The container's hosts file on the host (bind-mounted as its /etc/hosts). */
  hostsFile?: string;
}

const MARK = '# tsbuild network peers (rewritten on every start and stop of a container of the network)';

/** The hosts file with its peer section replaced by `peers` (dropped when there are none). */
export function withPeers(text: string, network: string, peers: readonly NetworkPeer[]): string {
  const i = text.indexOf(`${MARK}\n`);
  let base = i < 0 ? text : text.slice(0, i);
  if (base && !base.endsWith('\n')) base += '\n';
  if (!peers.length) return base;
  return `${base}${MARK}\n${peers.map((p) => `${p.address}\t${[...new Set(p.names)].join(' ')}\t# ${network} ${p.id.slice(0, 12)}\n`).join('')}`;
}

/**
 * Rewrites `file` in place (same inode, so every bind mount of it sees the new text): the new
 * content over the old from offset 0, then truncated to its length.
 */
export async function rewriteInPlace(file: string, text: string): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += (await fh.write(buf, off, buf.length - off, off)).bytesWritten;
    await fh.truncate(buf.length);
  } finally {
    await fh.close();
  }
}

/**
 * Brings the peer section of every hosts file on `network` up to date with `peers` (the
 * containers attached now), under the network's lock so starts and stops never interleave.
 * Best effort per file: a container whose directory is gone is skipped.
 */
export async function syncPeerHosts(root: string, network: string, peers: () => Promise<NetworkPeer[]>): Promise<void> {
  const locks = join(root, 'networks', 'locks');
  await fsp.mkdir(join(locks, network), { recursive: true });
  const release = await lockContainer(locks, network, 30_000).catch((e: unknown) => {
    throw new RuntimeError('LOCKED', `locking network ${network} to update the hosts files of its containers`, { cause: e });
  });
  try {
    const all = await peers();
    for (const p of all) {
      if (!p.hostsFile) continue;
      const text = await fsp.readFile(p.hostsFile, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const next = withPeers(text, network, all.filter((o) => o.id !== p.id));
      if (next !== text) await rewriteInPlace(p.hostsFile, next).catch(() => undefined);
    }
  } finally {
    await release();
  }
}
