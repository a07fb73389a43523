/**
 * Host ports of published container ports: a port asked for (`-p 8080:80`) is checked to be
 * free, a port left to us (`-P`, `-p 80`, hostPort 0) is picked from the kernel's ephemeral
 * range. The portmap plugin only writes DNAT rules and never binds the host port, so without
 * these checks a second container (or a host server) would silently take its traffic.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { RuntimeError } from '../errors.js';
import type { PortMapping } from './cni.js';

/** A mapping as `[ip:]port/proto`, for messages. */
export function describeHostPort(p: Pick<PortMapping, 'hostIP' | 'hostPort' | 'protocol'>): string {
  return `${p.hostIP && p.hostIP !== '0.0.0.0' ? `${p.hostIP}:` : ''}${p.hostPort}/${p.protocol}`;
}

/** Binds `ip:port` (0 = any) for a moment; resolves with the bound port, rejects with the bind error. */
function probe(protocol: 'tcp' | 'udp', ip: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = createSocket(ip.includes(':') ? 'udp6' : 'udp4');
      s.once('error', (e) => { s.close(); reject(e); });
      s.bind(port, ip, () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
      return;
    }
    const s = createServer();
    s.once('error', reject);
    s.listen({ port, host: ip, exclusive: true }, () => {
      const got = (s.address() as { port: number }).port;
      s.close(() => resolve(got));
    });
  });
}

/** Host ports that CNI portmap DNAT rules (of any tsbuild store, or any CNI runtime) hold now: `port/proto`. */
export async function portmapHostPorts(): Promise<Set<string>> {
  const text = await new Promise<string>((resolve) => {
    const child = spawn('iptables', ['-w', '-t', 'nat', '-S'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', () => resolve(''));
    child.on('close', () => resolve(Buffer.concat(out).toString('utf8')));
  });
  const used = new Set<string>();
  for (const line of text.split('\n')) {
    if (!/^-A CNI-DN-\S+ /.test(line)) continue;
    const port = /--dport (\d+)(?:\s|$)/.exec(line)?.[1];
    const proto = /-p (tcp|udp)\b/.exec(line)?.[1];
    if (port && proto) used.add(`${port}/${proto}`);
  }
  return used;
}

/**
 * Gives every mapping a free host port: a fixed one is checked (another container's mapping
 * in `taken`, a portmap rule, a host socket bound to it: PORT_IN_USE-style SETUP_FAILED naming
 * the port); hostPort 0 gets an ephemeral port that passes the same checks. Nothing is held.
 */
export async function allocateHostPorts(ports: readonly PortMapping[], taken: ReadonlyMap<string, string>): Promise<PortMapping[]> {
  if (!ports.length) return [];
  const rules = await portmapHostPorts();
  const mine = new Set<string>();
  const out: PortMapping[] = [];
  for (const p of ports) {
    const ip = p.hostIP ?? '0.0.0.0';
    const busy = (port: number): string | undefined => {
      const key = `${port}/${p.protocol}`;
      const who = taken.get(key);
      if (who) return `it is published by container ${who}`;
      if (mine.has(key)) return 'it is published twice by this container';
      if (rules.has(key)) return 'a CNI portmap rule already forwards it';
      return undefined;
    };
    if (p.hostPort) {
      const why = busy(p.hostPort) ?? (await probe(p.protocol, ip, p.hostPort).then(() => undefined, (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? 'a host process listens on it' : `binding it failed: ${e.message}`)));
      if (why) {
        throw new RuntimeError('SETUP_FAILED', `cannot publish port ${p.containerPort}/${p.protocol} on host port ${describeHostPort(p)}: the port is already in use (${why})`, { step: 'network', errno: 'EADDRINUSE' });
      }
      mine.add(`${p.hostPort}/${p.protocol}`);
      out.push({ ...p });
      continue;
    }
    let port = 0;
    for (let i = 0; i < 20 && !port; i++) {
      const got = await probe(p.protocol, ip, 0).catch((e: unknown) => {
        throw new RuntimeError('SETUP_FAILED', `picking a host port for ${p.containerPort}/${p.protocol} on ${ip}`, { cause: e, step: 'network' });
      });
      if (!busy(got)) port = got;
    }
    if (!port) throw new RuntimeError('SETUP_FAILED', `no free host port for ${p.containerPort}/${p.protocol}`, { step: 'network', errno: 'EADDRINUSE' });
    mine.add(`${port}/${p.protocol}`);
    out.push({ ...p, hostPort: port });
  }
  return out;
}
