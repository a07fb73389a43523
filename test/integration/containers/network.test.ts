import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
    expect((await tsbuildOk(['network', 'ls'], { root })).stdout).not.toContain(net);
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

  it('--network host shares the host network namespace; none has only loopback', async () => {
    const host = await tsbuildOk(['run', '--rm', '--network', 'host', IMG, 'readlink', '/proc/self/ns/net'], { root });
    expect(host.stdout.trim()).toBe(execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim());
    const none = await tsbuildOk(['run', '--rm', IMG, 'ls', '/sys/class/net'], { root });
    expect(none.stdout.trim()).toBe('lo');
  });
});
