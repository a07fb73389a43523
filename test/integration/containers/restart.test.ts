import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { firstReason, needTool } from '../../helpers/capabilities.js';
import { BUSYBOX, ContainerEnv, containerTestsUnavailable, processesWith, until } from '../../helpers/container-env.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { runTsbuild } from '../../helpers/tools.js';

const why = containerTestsUnavailable();
if (why) console.warn(`skip: ${why}`);
const netWhy = why ?? firstReason(
  needTool('ip'),
  needTool('iptables-save'),
  existsSync('/usr/lib/cni/bridge') || existsSync('/opt/cni/bin/bridge') ? undefined : 'the CNI plugins are not installed (containernetworking-plugins)',
);
if (!why && netWhy) console.warn(`skip: ${netWhy}`);

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

/** GET of a URL, retried for up to 10 s (the server may still be starting). */
async function httpGetRetry(url: string): Promise<{ status: number; body: string } | undefined> {
  const once = () => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
  for (let i = 0; i < 100; i++) {
    const r = await once().catch(() => undefined);
    if (r) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  return undefined;
}

describe.skipIf(!!why)('containers: --restart policies and restart', () => {
  const env = new ContainerEnv();
  beforeAll(() => env.setup());
  afterEach(async () => {
    expect(await env.cleanup()).toEqual([]);
  });
  afterAll(() => env.destroy());

  it('--restart on-failure:2 runs a failing command 3 times, then it is exited with RestartCount 2', async () => {
    const id = await env.runD('--restart', 'on-failure:2', BUSYBOX, 'sh', '-c', 'echo run; exit 3');
    expect((await env.ok('wait', id)).trim()).toBe('3');
    const i = await env.inspect(id);
    expect(i.State).toMatchObject({ Status: 'exited', ExitCode: 3, Running: false, Restarting: false });
    expect(i.RestartCount).toBe(2);
    expect(i.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });
    expect(await env.ok('logs', id)).toBe('run\nrun\nrun\n');
    // a success is not restarted by on-failure
    const okId = await env.runD('--restart', 'on-failure', BUSYBOX, 'sh', '-c', 'echo once');
    expect((await env.ok('wait', okId)).trim()).toBe('0');
    expect((await env.inspect(okId)).RestartCount).toBe(0);
    expect(await env.ok('logs', okId)).toBe('once\n');
  });

  it('--restart always restarts a process that exits until stop; stop disables the policy', async () => {
    const id = await env.runD('--name', 'looper', '--restart', 'always', BUSYBOX, 'sh', '-c', 'echo tick; sleep 0.2');
    const counted = await until(async () => ((await env.inspect(id)).RestartCount as number) >= 3, 30_000);
    expect(counted).toBe(true);
    // between runs it is listed as restarting, or up again
    expect(await env.ok('ps')).toContain('looper');
    await env.ok('stop', '-t', '2', 'looper');
    const after = await env.inspect(id);
    expect(after.State.Status).toBe('exited');
    const n = after.RestartCount as number;
    await new Promise((r) => setTimeout(r, 1500));
    expect((await env.inspect(id)).RestartCount).toBe(n);
    expect((await env.inspect(id)).State.Status).toBe('exited');
    expect((await env.ok('logs', id)).split('\n').filter((l) => l === 'tick').length).toBeGreaterThanOrEqual(n);
    // the monitor released what the container held
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
    expect(existsSync(join('/sys/fs/cgroup/pids', env.parent, id))).toBe(false);
  });

  it('restart of a running container: new process (pid), same id, name, rootfs and log', async () => {
    const id = await env.runD('--name', 'svc', BUSYBOX, 'sh', '-c', 'echo started; [ -f /marker ] && echo kept-rootfs; touch /marker; exec sleep 60');
    await until(async () => (await env.ok('logs', 'svc')).includes('started'), 20_000);
    const before = await env.inspect('svc');
    expect(before.State.Pid).toBeGreaterThan(0);
    expect((await env.ok('restart', '-t', '1', 'svc')).trim()).toBe('svc');
    const after = await env.inspect('svc');
    expect(after.Id).toBe(id);
    expect(after.State.Status).toBe('running');
    expect(after.State.Pid).toBeGreaterThan(0);
    expect(after.State.Pid).not.toBe(before.State.Pid);
    expect(Date.parse(after.State.StartedAt)).toBeGreaterThan(Date.parse(before.State.StartedAt));
    // restarted by request, not by a policy
    expect(after.RestartCount).toBe(0);
    const logs = await until(async () => ((await env.ok('logs', 'svc')).includes('kept-rootfs') ? env.ok('logs', 'svc') : ''), 20_000);
    expect(logs).toBe('started\nstarted\nkept-rootfs\n');
    expect((await env.ok('exec', 'svc', 'cat', '/proc/1/cmdline')).replace(/\0/g, ' ')).toBe('sleep 60 ');

    // restart of an exited container starts it again, as docker's
    await env.ok('stop', '-t', '0', 'svc');
    expect((await env.inspect('svc')).State.Status).toBe('exited');
    expect((await env.ok('restart', 'svc')).trim()).toBe('svc');
    const again = await env.inspect('svc');
    expect(again.Id).toBe(id);
    expect(again.State.Status).toBe('running');
    const logs2 = await until(async () => ((await env.ok('logs', 'svc')).split('\n').length > 4 ? env.ok('logs', 'svc') : ''), 20_000);
    expect(logs2).toBe('started\nstarted\nkept-rootfs\nstarted\nkept-rootfs\n');
  });

  it('start of an exited container: same id and name, its files and log kept, Up again; start of a running one is a no-op', async () => {
    const script = 'echo run; cat /data 2>/dev/null; echo kept > /data; [ -f /second ] && exec sleep 60; touch /second';
    const id = await env.runD('--name', 'again', BUSYBOX, 'sh', '-c', script);
    expect((await env.ok('wait', 'again')).trim()).toBe('0');
    expect(await env.ok('logs', 'again')).toBe('run\n');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
    expect((await env.ok('start', 'again')).trim()).toBe('again');
    const i = await env.inspect('again');
    expect(i.Id).toBe(id);
    expect(i.Name).toBe('/again');
    expect(i.State.Status).toBe('running');
    const logs = await until(async () => ((await env.ok('logs', 'again')).includes('kept') ? env.ok('logs', 'again') : ''), 20_000);
    expect(logs).toBe('run\nrun\nkept\n');
    expect(await env.ok('exec', 'again', 'cat', '/data')).toBe('kept\n');
    const row = (await env.ok('ps')).split('\n').find((l) => l.includes('again'));
    expect(row).toMatch(/\bUp\b/);
    expect(row).toContain(id.slice(0, 12));
    // docker start of a running container: nothing happens
    const pid = i.State.Pid as number;
    expect((await env.ok('start', id.slice(0, 12))).trim()).toBe(id.slice(0, 12));
    expect((await env.inspect('again')).State.Pid).toBe(pid);
    // --rm: gone once it exited, as with docker
    const rm = await env.runD('--rm', BUSYBOX, 'true');
    await until(async () => !(await env.ok('ps', '-aq', '--no-trunc')).includes(rm), 20_000);
    expect((await env.ts('start', rm)).stderr).toContain(`no such container: ${rm}`);
    const unknown = await env.ts('start', 'no-such-container');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no such container: no-such-container');
  });

  it('start -a prints the output of that start only and exits with its status', async () => {
    const id = await env.runD(BUSYBOX, 'sh', '-c', 'echo out; echo err >&2; exit 3');
    expect((await env.ok('wait', id)).trim()).toBe('3');
    const r = await env.ts('start', '-a', id);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect((await env.ok('logs', id)).split('\n').filter((l) => l === 'out')).toHaveLength(2);
  });

  it('start -a -i feeds stdin to a container run with -i', async () => {
    const id = await env.runD('-i', BUSYBOX, 'sh', '-c', 'read x; echo got $x');
    await env.ok('stop', '-t', '1', id);
    const r = await runTsbuild(['start', '-a', '-i', id], { root: env.root, input: 'hello\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('got hello\n');
    const both = await env.ts('start', '-a', id, id);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('cannot start and attach multiple containers');
  });

  it('a start that fails (its image was removed) leaves the container exited with the error, nothing mounted', async () => {
    await env.ok('import', await busyboxRootfs(), 'localhost/ctr/gone:1', '-c', 'LABEL gone=1');
    const id = await env.runD('localhost/ctr/gone:1', 'true');
    expect((await env.ok('wait', id)).trim()).toBe('0');
    await env.ok('rmi', '-f', 'localhost/ctr/gone:1'); // -f: a container uses it
    const r = await env.ts('start', id);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('its image localhost/ctr/gone:1 is no longer in the local store');
    expect((await env.inspect(id)).State).toMatchObject({ Status: 'exited', ExitCode: 0 });
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
  });

  it('a container whose monitor was SIGKILLed (exited 137) can be started again', async () => {
    const id = await env.runD(BUSYBOX, 'sh', '-c', 'echo up; exec sleep 60');
    await until(async () => (await env.ok('logs', id)).includes('up'), 20_000);
    const monitors = processesWith(`tsbuild-monitor ${id.slice(0, 12)}`);
    expect(monitors).toHaveLength(1);
    process.kill(monitors[0]!, 'SIGKILL');
    await until(async () => processesWith(`tsbuild-monitor ${id.slice(0, 12)}`).length === 0, 10_000);
    expect((await env.inspect(id)).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    await env.ok('start', id);
    expect((await env.inspect(id)).State.Status).toBe('running');
    await until(async () => (await env.ok('logs', id)) === 'up\nup\n', 20_000);
    expect(await env.ok('logs', id)).toBe('up\nup\n');
  });

  it('a monitor killed with SIGKILL under --restart always: exited, never restarting or running again; rm cleans it', async () => {
    const id = await env.runD('--restart', 'always', BUSYBOX, 'sh', '-c', 'sleep 0.3');
    await until(async () => ((await env.inspect(id)).RestartCount as number) >= 1, 30_000);
    const monitors = processesWith(`tsbuild-monitor ${id.slice(0, 12)}`);
    expect(monitors).toHaveLength(1);
    process.kill(monitors[0]!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const row = JSON.parse((await env.ok('ps', '-a', '--format', 'json')).trim()) as Record<string, unknown>;
    expect(row).toMatchObject({ State: 'exited' });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await env.inspect(id)).State).toMatchObject({ Status: 'exited', Running: false, Restarting: false, Error: 'the container monitor ended unexpectedly' });
    expect(existsSync(join('/sys/fs/cgroup/pids', env.parent, id))).toBe(false);
    await env.ok('rm', id);
  });

  it('bad --restart values and combinations are usage errors', async () => {
    for (const [args, msg] of [
      [['--restart', 'sometimes'], 'invalid restart policy "sometimes"'],
      [['--restart', 'always:3'], 'invalid restart policy "always:3"'],
      [['--rm', '--restart', 'always'], 'conflicting options: --restart and --rm'],
    ] as const) {
      const r = await env.ts('run', '-d', ...args, BUSYBOX, 'true');
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(msg);
    }
  });
});

describe.skipIf(!!netWhy)('containers: restart of an exited container on the tsbuild network', () => {
  const env = new ContainerEnv();
  beforeAll(() => env.setup());
  afterAll(() => env.destroy());

  it('-p on the tsbuild network serves HTTP again after restart from exited; rm -f leaves no veth, lease, rule, mount or cgroup', async () => {
    const port = await freePort();
    const id = await env.runD('--name', 'web', '--network', 'tsbuild', '-p', `127.0.0.1:${port}:80`, '--hostname', 'webhost', '--add-host', 'gw:host-gateway', '--dns', '10.0.0.53',
      BUSYBOX, 'sh', '-c', '[ -f /tmp/index.html ] || echo served-from-upper > /tmp/index.html; exec httpd -f -p 80 -h /tmp');
    const addresses: string[] = [];
    let veths: string[] = [];
    try {
      expect(await httpGetRetry(`http://127.0.0.1:${port}/index.html`)).toEqual({ status: 200, body: 'served-from-upper\n' });
      addresses.push((await env.inspect(id)).NetworkSettings.IPAddress as string);
      await env.ok('stop', '-t', '1', 'web');
      expect((await env.inspect('web')).State.Status).toBe('exited');
      expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toContain(`--dport ${port} `);
      expect((await env.ok('restart', 'web')).trim()).toBe('web');
      const i = await env.inspect('web');
      expect(i.Id).toBe(id);
      expect(i.State.Status).toBe('running');
      expect(i.NetworkSettings.Ports).toEqual([{ hostIP: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }]);
      const address = i.NetworkSettings.IPAddress as string;
      addresses.push(address);
      expect(address).toMatch(/^10\.88\.213\.\d+$/);
      expect(await httpGetRetry(`http://127.0.0.1:${port}/index.html`)).toEqual({ status: 200, body: 'served-from-upper\n' });
      expect((await env.ok('port', 'web'))).toBe(`80/tcp -> 127.0.0.1:${port}\n`);
      // the container's own files follow the new attachment; its flags still apply
      const inside = await env.ok('exec', 'web', 'sh', '-c', 'ip -4 -o addr show eth0; cat /etc/hosts /etc/resolv.conf; hostname');
      expect(inside).toContain(`inet ${address}/24`);
      expect(inside).toContain(`${address}\twebhost`);
      expect(inside).toContain('10.88.213.1\tgw');
      expect(inside).toContain('nameserver 10.0.0.53');
      expect(inside.trim().split('\n').pop()).toBe('webhost');
      // the host end of this container's veth: the interface whose ifindex is eth0's iflink
      const iflink = (await env.ok('exec', 'web', 'cat', '/sys/class/net/eth0/iflink')).trim();
      veths = readdirSync('/sys/class/net/tsbuild0/brif').filter((v) => readFileSync(join('/sys/class/net', v, 'ifindex'), 'utf8').trim() === iflink);
      expect(veths).toHaveLength(1);
    } finally {
      expect(await env.cleanup()).toEqual([]);
    }
    if (existsSync('/run/netns')) expect(readdirSync('/run/netns').filter((n) => n.startsWith(`tsbuild-${id.slice(0, 16)}`))).toEqual([]);
    const rules = execFileSync('iptables-save', { encoding: 'utf8' });
    expect(rules).not.toContain(id.slice(0, 12));
    expect(rules).not.toContain(`--dport ${port} `);
    for (const a of addresses) {
      expect(rules).not.toContain(`${a}/`);
      expect(existsSync(join('/var/lib/cni/networks/tsbuild', a)), `lease ${a}`).toBe(false);
    }
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
    for (const v of veths) expect(existsSync(join('/sys/class/net', v)), `veth ${v}`).toBe(false);
  });

  it('start of an exited container on a user network: its name and --network-alias resolve again for the others', async () => {
    const net = `r${process.pid}`;
    await env.ok('network', 'create', net, '--subnet', '10.88.243.0/24');
    try {
      await env.runD('--network', net, '--name', `srv${process.pid}`, '--network-alias', 'web', BUSYBOX, 'sh', '-c', '[ -f /tmp/index.html ] || echo by-alias > /tmp/index.html; exec httpd -f -p 80 -h /tmp');
      await env.runD('--network', net, '--name', `cli${process.pid}`, BUSYBOX, 'sleep', '600');
      await env.ok('stop', '-t', '1', `srv${process.pid}`);
      expect(await env.ok('exec', `cli${process.pid}`, 'cat', '/etc/hosts')).not.toContain(`srv${process.pid}`);
      await env.ok('start', `srv${process.pid}`);
      const address = (await env.inspect(`srv${process.pid}`)).NetworkSettings.IPAddress as string;
      expect(address).toMatch(/^10\.88\.243\.\d+$/);
      expect(await env.ok('exec', `cli${process.pid}`, 'cat', '/etc/hosts')).toContain(`${address}\tsrv${process.pid} web\t`);
      const body = await until(async () => (await env.ts('exec', `cli${process.pid}`, 'wget', '-qO-', 'http://web:80/index.html')).stdout, 10_000);
      expect(body).toBe('by-alias\n');
    } finally {
      expect(await env.cleanup()).toEqual([]);
      const leases = existsSync(`/var/lib/cni/networks/${net}`) ? readdirSync(`/var/lib/cni/networks/${net}`).filter((f) => f.startsWith('10.88.243.')) : [];
      expect(leases).toEqual([]);
      await env.ok('network', 'rm', net);
    }
  });
});
