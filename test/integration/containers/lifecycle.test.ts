import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { REPO_ROOT, runTsbuild, TSBUILD_MAIN, tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(
  needRoot(),
  needOverlay(),
  needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
  existsSync(TSBUILD_MAIN) ? undefined : 'the CLI is not built (npm run build)',
  existsSync(join(REPO_ROOT, 'native/build/tsbuild-helper')) ? undefined : 'native/build is not built (make -C native)',
);
if (why) console.warn(`skip: ${why}`);

const IMG = 'localhost/ctr/busybox:latest';
const STOPIMG = 'localhost/ctr/stopsig:latest';

/** Host pids whose command line mentions `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe.skipIf(!!why)('containers: run -d, ps, logs, exec, stop, kill, rm, wait, pause', () => {
  let root = '';
  const parent = `tsbuild-ctr-${process.pid}`;
  const ts = (...a: string[]) => runTsbuild(a, { root });
  const ok = async (...a: string[]) => (await tsbuildOk(a, { root })).stdout;
  const seen: string[] = [];
  const runD = async (...a: string[]) => {
    const id = (await ok('run', '-d', '--cgroup-parent', parent, ...a)).trim();
    seen.push(id);
    return id;
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-ctr-'));
    const bb = await busyboxRootfs();
    await tsbuildOk(['import', bb, IMG, '-c', 'CMD ["sh"]'], { root });
    await tsbuildOk(['import', bb, STOPIMG, '-c', 'STOPSIGNAL SIGUSR1'], { root });
  });

  const leftovers = (): string[] => {
    const out: string[] = [];
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(root)) out.push('mount');
    for (const d of ['containers', 'run']) {
      if (!existsSync(join(root, d))) continue;
      for (const e of readdirSync(join(root, d))) if (e !== 'names' || readdirSync(join(root, d, e)).length) out.push(`${d}/${e}`);
    }
    for (const h of ['pids', 'cpu', 'memory', 'freezer']) if (existsSync(join('/sys/fs/cgroup', h, parent))) out.push(`cgroup ${h}`);
    for (const id of seen) if (processesWith(`tsbuild-monitor ${id.slice(0, 12)}`).length) out.push(`monitor of ${id.slice(0, 12)}`);
    return out;
  };

  afterEach(async () => {
    const ids = (await ts('ps', '-aq', '--no-trunc')).stdout.split('\n').filter(Boolean);
    if (ids.length) await ts('rm', '-f', ...ids);
    expect(leftovers()).toEqual([]);
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('run -d returns the id at once; ps lists it; logs keep stdout and stderr apart in json-file format', async () => {
    const t0 = Date.now();
    const id = await runD('--name', 'web', IMG, 'sh', '-c', 'echo out1; echo err1 >&2; echo out2; sleep 60');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.now() - t0).toBeLessThan(20_000);
    // the container outlives the CLI that started it
    const ps = await ok('ps');
    expect(ps).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+${IMG.replace(/[/.]/g, '\\$&')}\\s+"sh -c 'echo out1; e…"\\s+.*\\s+Up .*\\s+web$`, 'm'));
    const json = (await ok('ps', '--format', 'json')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).toEqual([expect.objectContaining({ ID: id.slice(0, 12), Image: IMG, Names: 'web', State: 'running', ExitCode: null })]);
    expect((await ok('ps', '-q')).trim()).toBe(id.slice(0, 12));

    let logs = await ts('logs', 'web');
    for (let i = 0; i < 100 && !logs.stdout.includes('out2'); i++) {
      await new Promise((r) => setTimeout(r, 50));
      logs = await ts('logs', 'web');
    }
    expect(logs).toMatchObject({ code: 0, stdout: 'out1\nout2\n', stderr: 'err1\n' });
    const onDisk = readFileSync(join(root, 'containers', id, `${id}-json.log`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    // two pipes: the order within a stream is kept, not across them
    expect(onDisk.filter((e) => e.stream === 'stdout').map((e) => e.log)).toEqual(['out1\n', 'out2\n']);
    expect(onDisk.filter((e) => e.stream === 'stderr').map((e) => e.log)).toEqual(['err1\n']);
    expect(onDisk).toHaveLength(3);
    for (const e of onDisk) expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    // --tail counts entries across both streams (as docker's does); which stream wrote last is up to
    // the scheduler, so expect the last entry on disk on its own stream.
    const last = onDisk[onDisk.length - 1]!;
    const tail1 = await ts('logs', '--tail', '1', id.slice(0, 5));
    expect(last.stream === 'stdout' ? tail1.stdout : tail1.stderr).toBe(last.log);
    expect(last.stream === 'stdout' ? tail1.stderr : tail1.stdout).toBe('');
    const tailT = await ts('logs', '-t', '--tail', '1', 'web');
    expect(last.stream === 'stdout' ? tailT.stdout : tailT.stderr).toBe(`${last.time} ${last.log}`);

    // names are unique
    const dup = await ts('run', '-d', '--name', 'web', IMG, 'true');
    expect(dup.code).toBe(125);
    expect(dup.stderr).toContain('the container name web is already in use');

    const insp = JSON.parse(await ok('container', 'inspect', 'web')) as { Id: string; Name: string; State: { Status: string; Running: boolean; Pid: number } }[];
    expect(insp[0]).toMatchObject({ Id: id, Name: '/web', State: { Status: 'running', Running: true } });
    expect(insp[0]!.State.Pid).toBeGreaterThan(0);
  });

  it('exec joins the pid namespace and cgroup of the container, with -e -u -w', async () => {
    const id = await runD(IMG, 'sleep', '60');
    const r = await ts('exec', '-e', 'FOO=bar', '-u', 'nobody', '-w', '/tmp', id.slice(0, 12), 'sh', '-c',
      'echo "$FOO $(id -u) $(pwd)"; cat /proc/1/cmdline | tr "\\0" " "; echo');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('bar 65534 /tmp\nsleep 60 \n');
    expect(await ok('exec', id, 'sh', '-c', '[ "$(readlink /proc/1/ns/pid)" = "$(readlink /proc/self/ns/pid)" ] && [ "$(readlink /proc/1/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && echo same')).toBe('same\n');
    // the exec'd process is in the container's cgroup
    const cg = await ok('exec', id, 'sh', '-c', 'cat /proc/self/cgroup');
    expect(cg).toMatch(new RegExp(`pids:/${parent}/${id}\\n`));
    expect((await ts('exec', id, 'sh', '-c', 'exit 7')).code).toBe(7);
    const tty = await ts('exec', '-t', id, 'sh', '-c', 'tty; [ -t 1 ] && echo isatty');
    expect(tty.stdout.replace(/\r/g, '')).toMatch(/^\/dev\/pts\/\d+\nisatty\n$/);
    const piped = await runTsbuild(['exec', '-i', id, 'sh', '-c', 'tr a-z A-Z'], { root, input: 'piped\n' });
    expect(piped).toMatchObject({ code: 0, stdout: 'PIPED\n' });
    expect((await ts('exec', id, '/no/such')).code).toBe(127);
    await ok('stop', '-t', '0', id);
    const stopped = await ts('exec', id, 'true');
    expect(stopped.code).toBe(125);
    expect(stopped.stderr).toContain('is exited, not running');
  });

  it("stop sends the image's STOPSIGNAL, then SIGKILL after -t; wait prints the exit code", async () => {
    const graceful = await runD('--name', 'graceful', STOPIMG, 'sh', '-c', 'trap "echo got usr1; exit 3" USR1; while true; do sleep 0.1; done');
    await new Promise((r) => setTimeout(r, 300));
    await ok('stop', '-t', '10', 'graceful');
    expect((await ok('wait', graceful)).trim()).toBe('3');
    expect((await ok('logs', 'graceful'))).toBe('got usr1\n');
    expect(JSON.parse((await ok('ps', '-a', '--format', 'json')).trim().split('\n')[0]!)).toMatchObject({ State: 'exited', ExitCode: 3, Status: expect.stringMatching(/^Exited \(3\) /) });

    // PID 1 without a handler ignores SIGTERM: stop must fall back to SIGKILL after the timeout
    const stubborn = await runD(IMG, 'sleep', '60');
    const t0 = Date.now();
    await ok('stop', '-t', '1', stubborn);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect((await ok('wait', stubborn)).trim()).toBe('137');
    // stopped containers stay until rm, and keep nothing mounted
    expect((await ok('ps', '-aq')).split('\n').filter(Boolean)).toHaveLength(2);
    expect((await ok('ps', '-q')).trim()).toBe('');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
  });

  it('kill -s, pause/unpause through the freezer, rm refuses a running container without -f', async () => {
    const id = await runD('--name', 'victim', IMG, 'sh', '-c', 'trap "exit 42" HUP; while true; do sleep 0.1; done');
    await new Promise((r) => setTimeout(r, 300));
    await ok('pause', 'victim');
    const frozen = readFileSync(join('/sys/fs/cgroup/freezer', parent, id, 'freezer.state'), 'utf8').trim();
    expect(frozen).toBe('FROZEN');
    expect(await ok('ps')).toContain('(Paused)');
    expect((JSON.parse(await ok('container', 'inspect', 'victim')) as { State: { Status: string } }[])[0]!.State.Status).toBe('paused');
    await ok('unpause', 'victim');
    expect(await ok('ps')).not.toContain('(Paused)');
    const busy = await ts('rm', 'victim');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toContain('container victim is running');
    await ok('kill', '-s', 'HUP', 'victim');
    expect((await ok('wait', 'victim')).trim()).toBe('42');
    await ok('rm', 'victim');
    expect((await ts('logs', 'victim')).stderr).toContain('no such container: victim');
    // the name is free again
    const again = await runD('--name', 'victim', IMG, 'sleep', '60');
    await ok('rm', '-f', again.slice(0, 8));
    expect((await ok('ps', '-a', '-q')).trim()).toBe('');
  });

  it('a monitor killed with SIGKILL leaves an exited container, never a phantom running one; rm cleans it', async () => {
    const id = await runD(IMG, 'sleep', '60');
    const monitors = processesWith(`tsbuild-monitor ${id.slice(0, 12)}`);
    expect(monitors, 'the monitor runs').toHaveLength(1);
    process.kill(monitors[0]!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const row = JSON.parse((await ok('ps', '-a', '--format', 'json')).trim()) as Record<string, unknown>;
    expect(row).toMatchObject({ State: 'exited', ExitCode: 137 });
    expect((await ok('ps', '-q')).trim()).toBe('');
    // what the container ran is gone, and so are its mount and cgroup
    expect(existsSync(join('/sys/fs/cgroup/pids', parent, id))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
    await ok('rm', id);
  });

  it('logs -f follows until the container exits', async () => {
    const id = await runD(IMG, 'sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.3; done; echo gone >&2');
    const t0 = Date.now();
    const r = await ts('logs', '-f', id);
    expect(r).toMatchObject({ code: 0, stdout: 'line1\nline2\nline3\n', stderr: 'gone\n' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect((await ok('wait', id)).trim()).toBe('0');
  });

  it('--log-opt max-size/max-file rotate the json-file log; logs reads the kept files in order', async () => {
    const id = await runD('--log-opt', 'max-size=1k', '--log-opt', 'max-file=2', IMG, 'sh', '-c', 'i=0; while [ $i -lt 200 ]; do echo l$i; i=$((i+1)); done');
    expect((await ok('wait', id)).trim()).toBe('0');
    const log = join(root, 'containers', id, `${id}-json.log`);
    expect(existsSync(`${log}.1`)).toBe(true);
    expect(existsSync(`${log}.2`)).toBe(false);
    expect(readFileSync(log).length).toBeLessThanOrEqual(1024);
    const lines = (await ok('logs', id)).split('\n').filter(Boolean);
    expect(lines.at(-1)).toBe('l199');
    const first = Number(lines[0]!.slice(1));
    expect(first).toBeGreaterThan(0);
    expect(lines).toEqual(Array.from({ length: 200 - first }, (_, k) => `l${first + k}`));
    expect(await ok('logs', '--tail', '2', id)).toBe('l198\nl199\n');
    const bad = await ts('run', '-d', '--log-opt', 'colour=red', IMG, 'true');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid log option "colour=red"');
  });

  it('stats --no-stream agrees with the cgroup files; port lists nothing without -p', async () => {
    const id = await runD('-m', '64m', IMG, 'sh', '-c', 'sleep 60 & while :; do :; done');
    const rec = JSON.parse(readFileSync(join(root, 'containers', id, 'container.json'), 'utf8')) as { cgroup: { paths: Record<string, string> } };
    const mem = rec.cgroup.paths.memory!;
    const s = JSON.parse((await ok('stats', '--no-stream', '--format', 'json', id)).trim()) as { ID: string; CPUPerc: string; MemUsage: number; MemLimit: number; PIDs: number };
    const usage = Number(readFileSync(join(mem, 'memory.usage_in_bytes'), 'utf8'));
    expect(s.ID).toBe(id.slice(0, 12));
    expect(s.MemLimit).toBe(Number(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8')));
    expect(s.MemLimit).toBe(64 * 1024 * 1024);
    expect(s.MemUsage).toBeGreaterThan(0);
    expect(Math.abs(s.MemUsage - usage)).toBeLessThan(1024 * 1024);
    expect(s.PIDs).toBe(2);
    expect(parseFloat(s.CPUPerc)).toBeGreaterThan(10);
    expect(await ok('port', id)).toBe('');
    const top = (await ok('top', id)).trim().split('\n');
    expect(top[0]).toMatch(/^PID\s+PPID\s+UID\s+CMD$/);
    expect(top.slice(1).map((l) => l.split(/\s+/).slice(3).join(' ')).sort()).toEqual(['sh -c sleep 60 & while :; do :; done', 'sleep 60']);
  });

  it('--rm removes a detached container when it exits; attached runs are kept unless --rm', async () => {
    const id = await runD('--rm', IMG, 'sh', '-c', 'echo bye');
    for (let i = 0; i < 100 && existsSync(join(root, 'containers', id)); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await ok('ps', '-aq')).trim()).toBe('');

    const kept = await ts('run', '--cgroup-parent', parent, '--name', 'kept', IMG, 'sh', '-c', 'exit 4');
    expect(kept.code).toBe(4);
    expect(JSON.parse((await ok('ps', '-a', '--format', 'json')).trim())).toMatchObject({ Names: 'kept', State: 'exited', ExitCode: 4 });
    await ok('rm', 'kept');
    const gone = await ts('run', '--rm', '--cgroup-parent', parent, IMG, 'true');
    expect(gone.code).toBe(0);
    expect((await ok('ps', '-aq')).trim()).toBe('');
  });

  it('-t gives the process a terminal (attached and detached)', async () => {
    const r = await ts('run', '--rm', '-t', '--cgroup-parent', parent, IMG, 'sh', '-c', 'tty; [ -t 1 ] && echo isatty');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.replace(/\r/g, '')).toMatch(/^\/dev\/pts\/\d+\nisatty\n$/);
    const id = await runD('-t', IMG, 'sh', '-c', 'tty; sleep 60');
    let logs = '';
    for (let i = 0; i < 100 && !logs.includes('pts'); i++) {
      await new Promise((res) => setTimeout(res, 50));
      logs = await ok('logs', id);
    }
    expect(logs.replace(/\r/g, '')).toMatch(/^\/dev\/pts\/\d+\n$/);
  });

  it('prefix lookups: unknown and ambiguous references are clear errors', async () => {
    const none = await ts('stop', 'nosuchcontainer');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('no such container: nosuchcontainer');
    const a = await runD(IMG, 'sleep', '60');
    const b = await runD(IMG, 'sleep', '60');
    // find a prefix both share, if any; the empty-ish prefix of one hex digit often does
    let common = 0;
    while (a[common] === b[common]) common++;
    if (common > 0) {
      const amb = await ts('kill', a.slice(0, common));
      expect(amb.stderr).toContain('is ambiguous');
    }
    expect((await ok('kill', a.slice(0, common + 1))).trim()).toBe(a.slice(0, common + 1));
    expect((await ok('wait', a.slice(0, common + 1))).trim()).toBe('137');
    expect(b).not.toBe(a);
  });
});
