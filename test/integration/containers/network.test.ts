import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { REPO_ROOT, runTsbuild, TSBUILD_MAIN, tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(
  needRoot(),
  needOverlay(),
  needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
  needTool('ip'),
  needTool('iptables-save'),
  existsSync('/usr/lib/cni/bridge') || existsSync('/opt/cni/bin/bridge') ? undefined : 'the CNI plugins are not installed (containernetworking-plugins)',
  existsSync(TSBUILD_MAIN) ? undefined : 'the CLI is not built (npm run build)',
  existsSync(join(REPO_ROOT, 'native/build/tsbuild-helper')) ? undefined : 'native/build is not built (make -C native)',
);
if (why) console.warn(`skip: ${why}`);

const IMG = 'localhost/ctrnet/busybox:latest';

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe.skipIf(!!why)('containers: CNI networking', () => {
  let root = '';
  const parent = `tsbuild-ctrnet-${process.pid}`;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-ctrnet-'));
    await tsbuildOk(['import', await busyboxRootfs(), IMG], { root });
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** What a container on the network may leave behind: netns, veth on the bridge, iptables rules, IPAM lease. */
  const netLeftovers = (id: string, address: string | undefined): string[] => {
    const out: string[] = [];
    if (existsSync('/run/netns') && readdirSync('/run/netns').some((n) => n.startsWith(`tsbuild-${id.slice(0, 16)}`))) out.push('netns');
    const rules = execFileSync('iptables-save', { encoding: 'utf8' });
    if (rules.includes(id.slice(0, 12)) || (address && rules.includes(`${address}/`))) out.push('iptables');
    if (address && existsSync(join('/var/lib/cni/networks/tsbuild', address))) out.push('ipam lease');
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(root)) out.push('mount');
    return out;
  };

  it('-p 127.0.0.1:PORT:80 publishes busybox httpd on the tsbuild bridge; rm -f removes veth, rules, lease and netns', async () => {
    const port = await freePort();
    const id = (await tsbuildOk(['run', '-d', '--cgroup-parent', parent, '--name', 'web', '-p', `127.0.0.1:${port}:80`, IMG, 'sh', '-c', 'echo hello-from-httpd > /tmp/index.html; exec httpd -f -p 80 -h /tmp'], { root })).stdout.trim();
    let address: string | undefined;
    let veths: string[] = [];
    try {
      const insp = JSON.parse((await tsbuildOk(['container', 'inspect', id], { root })).stdout) as { NetworkSettings: { IPAddress: string; Ports: unknown[] } }[];
      address = insp[0]!.NetworkSettings.IPAddress;
      expect(address).toMatch(/^10\.88\.213\.\d+$/);
      expect(insp[0]!.NetworkSettings.Ports).toEqual([{ hostIP: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }]);
      let res: { status: number; body: string } | undefined;
      for (let i = 0; i < 50 && !res; i++) {
        res = await httpGet(`http://127.0.0.1:${port}/index.html`).catch(() => undefined);
        if (!res) await new Promise((r) => setTimeout(r, 100));
      }
      expect(res).toEqual({ status: 200, body: 'hello-from-httpd\n' });
      expect((await tsbuildOk(['port', 'web'], { root })).stdout).toBe(`80/tcp -> 127.0.0.1:${port}\n`);
      expect((await tsbuildOk(['ps'], { root })).stdout).toContain(`127.0.0.1:${port}->80/tcp`);
      // the container's own files: eth0 with that address, /etc/hosts naming it
      const inside = (await tsbuildOk(['exec', id, 'sh', '-c', 'ip -4 -o addr show eth0; cat /etc/hosts'], { root })).stdout;
      expect(inside).toContain(`inet ${address}/24`);
      expect(inside).toContain(`${address}\t${id.slice(0, 12)}`);
      veths = readdirSync('/sys/class/net/tsbuild0/brif');
      expect(veths.length).toBeGreaterThan(0);
      expect(netLeftovers(id, address)).toContain('iptables');
    } finally {
      await runTsbuild(['rm', '-f', id], { root });
    }
    expect(netLeftovers(id, address)).toEqual([]);
    for (const v of veths) expect(existsSync(join('/sys/class/net', v)), `veth ${v}`).toBe(false);
    for (const h of ['pids', 'memory']) expect(existsSync(join('/sys/fs/cgroup', h, parent))).toBe(false);
  });

  it('network create/ls/rm: a user network with its own bridge and subnet; containers on it reach each other', async () => {
    const net = `t${process.pid}`;
    await tsbuildOk(['network', 'create', net, '--subnet', '10.88.250.0/24'], { root });
    const dup = await runTsbuild(['network', 'create', net], { root });
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toContain(`network ${net} already exists`);
    const server = (await tsbuildOk(['run', '-d', '--cgroup-parent', parent, '--network', net, IMG, 'sh', '-c', 'echo peer > /tmp/index.html; exec httpd -f -p 80 -h /tmp'], { root })).stdout.trim();
    let address = '';
    try {
      address = (JSON.parse((await tsbuildOk(['container', 'inspect', server], { root })).stdout) as { NetworkSettings: { IPAddress: string } }[])[0]!.NetworkSettings.IPAddress;
      expect(address).toMatch(/^10\.88\.250\.\d+$/);
      const ls = (await tsbuildOk(['network', 'ls', '--format', 'json'], { root })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; bridge: string; containers: string[] });
      expect(ls.find((n) => n.name === net)).toEqual({ name: net, bridge: `tsb-${net}`, subnet: '10.88.250.0/24', containers: [server] });
      let body = '';
      for (let i = 0; i < 20 && body !== 'peer\n'; i++) {
        body = (await runTsbuild(['run', '--rm', '--cgroup-parent', parent, '--network', net, IMG, 'wget', '-qO-', `http://${address}/index.html`], { root })).stdout;
        if (body !== 'peer\n') await new Promise((r) => setTimeout(r, 100));
      }
      expect(body).toBe('peer\n');
      const busy = await runTsbuild(['network', 'rm', net], { root });
      expect(busy.code).not.toBe(0);
      expect(busy.stderr).toContain(`network ${net} is in use by container ${server.slice(0, 12)}`);
    } finally {
      await runTsbuild(['rm', '-f', server], { root });
    }
    expect(netLeftovers(server, address)).toEqual([]);
    await tsbuildOk(['network', 'rm', net], { root });
    expect(existsSync(`/sys/class/net/tsb-${net}`)).toBe(false);
    expect(existsSync(`/var/lib/cni/networks/${net}`)).toBe(false);
    expect((await tsbuildOk(['network', 'ls'], { root })).stdout).not.toContain(net);
    // network prune: unused user networks go, the default one stays
    await tsbuildOk(['network', 'create', `${net}x`, '--subnet', '10.88.251.0/24'], { root });
    expect((await tsbuildOk(['network', 'prune', '-f'], { root })).stdout).toBe(`Deleted Networks:\n${net}x\n`);
    expect((await tsbuildOk(['network', 'ls', '--format', 'json'], { root })).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { name: string }).name)).toEqual(['tsbuild']);
  });

  it('--network none with -p, unknown networks and bad ports are clear errors that leave nothing', async () => {
    const none = await runTsbuild(['run', '--rm', '--network', 'none', '-p', '8080:80', IMG, 'true'], { root });
    expect(none.code).toBe(125);
    expect(none.stderr).toContain('published ports need a container network');
    const unknown = await runTsbuild(['run', '--rm', '--network', 'nosuchnet', IMG, 'true'], { root });
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toContain('network nosuchnet not found');
    const bad = await runTsbuild(['run', '--rm', '-p', '99999:80', IMG, 'true'], { root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid published port "99999:80"');
    expect(readdirSync(join(root, 'containers')).filter((d) => d !== 'names')).toEqual([]);
    expect(existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('tsbuild-')) : []).toEqual([]);
  });

  /** Everything a user network's containers may leave: leases, veths on its bridge, iptables rules naming its subnet. */
  const userNetLeftovers = (net: string, subnetPrefix: string): string[] => {
    const out: string[] = [];
    const leases = existsSync(`/var/lib/cni/networks/${net}`) ? readdirSync(`/var/lib/cni/networks/${net}`).filter((f) => f.startsWith(subnetPrefix)) : [];
    if (leases.length) out.push(`leases ${leases.join(' ')}`);
    if (existsSync(`/sys/class/net/tsb-${net}/brif`) && readdirSync(`/sys/class/net/tsb-${net}/brif`).length) out.push('veth');
    if (execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').some((l) => l.includes(subnetPrefix) && !l.includes(`${subnetPrefix}0/24`))) out.push('iptables');
    return out;
  };

  it('-P publishes EXPOSEd ports and --expose on ephemeral host ports; a host port in use fails naming it and makes nothing', async () => {
    const ctx = mkdtempSync(join(tmpdir(), 'tsbuild-ctrnet-ctx-'));
    const net = `p${process.pid}`;
    let id = '';
    try {
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${IMG}\nEXPOSE 80 8081/tcp\n`);
      await tsbuildOk(['build', '-q', '-t', 'localhost/ctrnet/exposed:latest', ctx], { root });
      await tsbuildOk(['network', 'create', net, '--subnet', '10.88.247.0/24'], { root });
      id = (await tsbuildOk(['run', '-d', '--cgroup-parent', parent, '--network', net, '-P', '--expose', '5353/udp', 'localhost/ctrnet/exposed:latest', 'sh', '-c', 'echo exposed > /tmp/index.html; exec httpd -f -p 80 -h /tmp'], { root })).stdout.trim();
      const lines = (await tsbuildOk(['port', id], { root })).stdout.trim().split('\n');
      expect(lines.map((l) => l.replace(/:\d+$/, ':N'))).toEqual(['80/tcp -> 0.0.0.0:N', '8081/tcp -> 0.0.0.0:N', '5353/udp -> 0.0.0.0:N']);
      const hostPorts = lines.map((l) => Number(/:(\d+)$/.exec(l)![1]));
      for (const p of hostPorts) expect(p).toBeGreaterThan(1024);
      expect(new Set(hostPorts).size).toBe(3);
      expect((await tsbuildOk(['port', id, '5353/udp'], { root })).stdout).toBe(`0.0.0.0:${hostPorts[2]}\n`);
      const unpublished = await runTsbuild(['port', id, '9999'], { root });
      expect(unpublished.code).not.toBe(0);
      expect(unpublished.stderr).toContain('no public port 9999/tcp published');
      let res: { status: number; body: string } | undefined;
      for (let i = 0; i < 50 && !res; i++) {
        res = await httpGet(`http://127.0.0.1:${hostPorts[0]}/index.html`).catch(() => undefined);
        if (!res) await new Promise((r) => setTimeout(r, 100));
      }
      expect(res).toEqual({ status: 200, body: 'exposed\n' });

      // a port another container of this store publishes, then one a host process listens on
      const taken = await runTsbuild(['run', '--rm', '--cgroup-parent', parent, '--network', net, '-p', `${hostPorts[0]}:80`, IMG, 'true'], { root });
      expect(taken.code).toBe(125);
      expect(taken.stderr).toContain(`host port ${hostPorts[0]}/tcp: the port is already in use (it is published by container ${id.slice(0, 12)})`);
      const port = await freePort();
      const server = createServer();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
      try {
        const busy = await runTsbuild(['run', '-d', '--cgroup-parent', parent, '--network', net, '-p', `127.0.0.1:${port}:80`, IMG, 'true'], { root });
        expect(busy.code).toBe(125);
        expect(busy.stderr).toContain(`cannot publish port 80/tcp on host port 127.0.0.1:${port}/tcp: the port is already in use`);
      } finally {
        await new Promise((r) => server.close(r));
      }
      expect(readdirSync(join(root, 'containers')).filter((d) => d !== 'names' && d !== id)).toEqual([]);
      expect(readdirSync(join(root, 'networks', 'cache'))).toEqual([`${id}.json`]);
      expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toContain(`--dport ${port} `);
    } finally {
      if (id) await runTsbuild(['rm', '-f', id], { root });
      rmSync(ctx, { recursive: true, force: true });
    }
    expect(userNetLeftovers(net, '10.88.247.')).toEqual([]);
    await tsbuildOk(['network', 'rm', net], { root });
  });

  it('--hostname, --domainname, --dns*, --add-host (host-gateway) make the container\'s own hosts, resolv.conf and hostname files', async () => {
    const r = await tsbuildOk(['run', '--rm', '--cgroup-parent', parent, '--network', 'tsbuild', '--hostname', 'h1', '--domainname', 'example.org',
      '--dns', '192.0.2.53', '--dns', '192.0.2.54', '--dns-search', 'a.test', '--dns-option', 'ndots:2', '--add-host', 'gw:host-gateway', '--add-host', 'db:192.0.2.10',
      IMG, 'sh', '-c', 'cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hostname; hostname; cat /proc/sys/kernel/domainname; ip -4 -o addr show eth0; ip -o link show lo'], { root });
    const [hosts, resolv, names] = r.stdout.split('---\n');
    const address = /inet (\S+)\//.exec(names!)![1]!;
    expect(hosts).toContain('127.0.0.1\tlocalhost\n');
    expect(hosts).toContain('10.88.213.1\tgw\n192.0.2.10\tdb\n');
    expect(hosts).toContain(`${address}\th1.example.org h1\n`);
    expect(hosts).not.toContain('tsbuild network peers');
    expect(resolv).toBe('search a.test\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions ndots:2\n');
    expect(names!.split('\n').slice(0, 3)).toEqual(['h1', 'h1', 'example.org']);
    // lo is up (the loopback plugin)
    expect(names).toMatch(/lo: <LOOPBACK,UP/);
    // the files are the container's own, not the image's
    const plain = await tsbuildOk(['run', '--rm', '--cgroup-parent', parent, IMG, 'sh', '-c', 'cat /etc/hostname; grep -c gw /etc/hosts || true'], { root });
    expect(plain.stdout).not.toContain('h1');
    expect(plain.stdout.trim().split('\n').pop()).toBe('0');
    const none = await runTsbuild(['run', '--rm', '--add-host', 'gw:host-gateway', IMG, 'true'], { root });
    expect(none.code).toBe(125);
    expect(none.stderr).toContain('host-gateway needs a container network');
    const bad = await runTsbuild(['run', '--rm', '--dns', 'not-an-ip', IMG, 'true'], { root });
    expect(bad.code).toBe(2);
  });

  it('a user network resolves container names and --network-alias through /etc/hosts; rm takes the name away; the default network does not', async () => {
    const net = `n${process.pid}`;
    await tsbuildOk(['network', 'create', net, '--subnet', '10.88.248.0/24'], { root });
    const ids: string[] = [];
    try {
      const srv = (await tsbuildOk(['run', '-d', '--cgroup-parent', parent, '--network', net, '--name', `srv${process.pid}`, '--network-alias', 'web', IMG, 'sh', '-c', 'echo by-name > /tmp/index.html; exec httpd -f -p 80 -h /tmp'], { root })).stdout.trim();
      ids.push(srv);
      const cli = (await tsbuildOk(['run', '-d', '--cgroup-parent', parent, '--network', net, '--name', `cli${process.pid}`, IMG, 'sleep', '600'], { root })).stdout.trim();
      ids.push(cli);
      const ping = await tsbuildOk(['exec', cli, 'ping', '-c1', '-W5', `srv${process.pid}`], { root });
      expect(ping.stdout).toContain('1 packets received');
      let body = '';
      for (let i = 0; i < 30 && body !== 'by-name\n'; i++) {
        body = (await runTsbuild(['exec', cli, 'wget', '-qO-', 'http://web:80/index.html'], { root })).stdout;
        if (body !== 'by-name\n') await new Promise((r) => setTimeout(r, 100));
      }
      expect(body).toBe('by-name\n');
      // srv started first: it learnt cli's name through its bind-mounted hosts file, rewritten in place
      const cliAddr = (JSON.parse((await tsbuildOk(['container', 'inspect', cli], { root })).stdout) as { NetworkSettings: { IPAddress: string } }[])[0]!.NetworkSettings.IPAddress;
      expect((await tsbuildOk(['exec', srv, 'cat', '/etc/hosts'], { root })).stdout).toContain(`${cliAddr}\tcli${process.pid}\t# ${net} ${cli.slice(0, 12)}\n`);
      await tsbuildOk(['rm', '-f', cli], { root });
      ids.pop();
      const after = (await tsbuildOk(['exec', srv, 'cat', '/etc/hosts'], { root })).stdout;
      expect(after).not.toContain(`cli${process.pid}`);
      expect(after).not.toContain('tsbuild network peers');
      // docker's default bridge has no name resolution: neither has tsbuild's
      const d1 = (await tsbuildOk(['run', '-d', '--cgroup-parent', parent, '--network', 'tsbuild', '--name', `d1${process.pid}`, IMG, 'sleep', '600'], { root })).stdout.trim();
      ids.push(d1);
      const d2 = await runTsbuild(['run', '--rm', '--cgroup-parent', parent, '--network', 'tsbuild', IMG, 'sh', '-c', `cat /etc/hosts; ping -c1 -W1 d1${process.pid}`], { root });
      expect(d2.code).not.toBe(0);
      expect(d2.stdout).not.toContain(`d1${process.pid}`);
      const alias = await runTsbuild(['run', '--rm', '--network-alias', 'x', IMG, 'true'], { root });
      expect(alias.code).toBe(125);
      expect(alias.stderr).toContain('network aliases need a user network');
    } finally {
      for (const id of ids) await runTsbuild(['rm', '-f', id], { root });
    }
    expect(userNetLeftovers(net, '10.88.248.')).toEqual([]);
    await tsbuildOk(['network', 'rm', net], { root });
  });

  it('--network host shares the host network namespace; none has only loopback', async () => {
    const host = await tsbuildOk(['run', '--rm', '--network', 'host', IMG, 'readlink', '/proc/self/ns/net'], { root });
    expect(host.stdout.trim()).toBe(execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim());
    const none = await tsbuildOk(['run', '--rm', IMG, 'ls', '/sys/class/net'], { root });
    expect(none.stdout.trim()).toBe('lo');
  });
});
