/**
 * `tsbuild runtime` lifecycle hooks and --console-socket, driven through the CLI like runc:
 * - all six hook phases run in order, each with the state JSON on stdin; prestart, createRuntime,
 *   poststart and poststop in the runtime's namespaces, createContainer and startContainer in the
 *   container's (its mount namespace; startContainer after pivot_root, so its path is the
 *   container's /bin/sh);
 * - a failing prestart hook fails create, removes the container and still runs poststop;
 * - a hook past its timeout is killed and fails create;
 * - --console-socket: the pty master arrives over SCM_RIGHTS (received by python3, which Node
 *   cannot do) and carries the container's terminal output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, nativeSkipReason, testSpec, type TestBundle } from '../../runtime/helper/bundle.js';

const CLI = fileURLToPath(new URL('../../../dist/src/cli/main.js', import.meta.url));
const why = nativeSkipReason() ?? (existsSync(CLI) ? undefined : 'the CLI is not built (npm run build)');
if (why) console.warn(`skip: ${why}`);
const pyWhy = spawnSync('sh', ['-c', 'command -v python3']).status === 0 ? undefined : 'python3 is not installed (it receives the pty fd)';
if (!why && pyWhy) console.warn(`skip: ${pyWhy}`);

let bundle: TestBundle;
let root: string;
let n = 0;

function ts(...args: string[]) {
  return spawnSync('node', [CLI, '--root', join(root, 'store'), 'runtime', ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** create hands its stdio to the container: a file, not a pipe that would stay open. */
function create(id: string, ...extra: string[]): { status: number | null; out: string } {
  const log = join(root, `create-${n++}.log`);
  const fd = openSync(log, 'w');
  try {
    const r = spawnSync('node', [CLI, '--root', join(root, 'store'), 'runtime', 'create', '--bundle', bundle.dir, ...extra, id], { stdio: ['ignore', fd, fd], timeout: 60_000 });
    return { status: r.status, out: readFileSync(log, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

async function waitStopped(id: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const r = ts('state', id);
    if (r.status !== 0 || (JSON.parse(r.stdout) as { status: string }).status === 'stopped') return;
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** A hook appending "<phase> <stdin>" and its mount namespace to `file` (a path as the hook sees it). */
function hook(phase: string, file: string, sh = '/bin/sh') {
  return { path: sh, args: ['sh', '-c', `s=$(cat); echo "${phase} $(readlink /proc/self/ns/mnt) $s" >> ${file}`] };
}

describe.skipIf(!!why)('tsbuild runtime: hooks and console socket', () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-hooks-'));
    bundle = makeBundle('tsbuild-hooks-bundle-');
  });
  afterAll(() => {
    bundle?.remove();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('runs the six hook phases in order, each in its namespace, with the state on stdin', async () => {
    const out = join(bundle.dir, 'hooks.log');
    const spec = testSpec(['/bin/true']) as Record<string, any>;
    spec.root.readonly = false;
    spec.process.cwd = '/tmp';
    spec.process.args = ['/bin/sh', '-c', 'echo process > /tmp/process-ran'];
    spec.annotations = { 'org.example.test': 'hooks' };
    spec.hooks = {
      prestart: [hook('prestart', out)],
      createRuntime: [hook('createRuntime', out)],
      createContainer: [hook('createContainer', out)],
      // after pivot_root: the container's /bin/sh, a path in the container's root
      startContainer: [hook('startContainer', '/tmp/start-hook.log')],
      poststart: [hook('poststart', out)],
      poststop: [hook('poststop', out)],
    };
    bundle.writeSpec(spec);
    const id = `hooks${process.pid}`;
    const c = create(id);
    expect(c.status, c.out).toBe(0);
    const state = JSON.parse(ts('state', id).stdout) as { pid: number; status: string };
    expect(state.status).toBe('created');
    let lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['prestart', 'createRuntime', 'createContainer']);
    const hostMnt = readlinkSync('/proc/self/ns/mnt');
    const ctrMnt = readlinkSync(`/proc/${state.pid}/ns/mnt`);
    expect(lines[0]!.split(' ')[1]).toBe(hostMnt);
    expect(lines[1]!.split(' ')[1]).toBe(hostMnt);
    expect(lines[2]!.split(' ')[1]).toBe(ctrMnt);
    for (const l of lines) {
      const st = JSON.parse(l.split(' ').slice(2).join(' ')) as { id: string; pid: number; bundle: string; annotations: Record<string, string> };
      expect(st).toMatchObject({ id, pid: state.pid, bundle: bundle.dir, annotations: { 'org.example.test': 'hooks' } });
    }
    const s = ts('start', id);
    expect(s.status, s.stderr).toBe(0);
    lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['prestart', 'createRuntime', 'createContainer', 'poststart']);
    expect(JSON.parse(lines[3]!.split(' ').slice(2).join(' '))).toMatchObject({ status: 'running' });
    const startLog = readFileSync(join(bundle.dir, 'rootfs/tmp/start-hook.log'), 'utf8').trim().split(' ');
    expect(startLog[0]).toBe('startContainer');
    expect(startLog[1]).toBe(ctrMnt);
    expect(JSON.parse(startLog.slice(2).join(' '))).toMatchObject({ id, status: 'created' });
    await waitStopped(id);
    expect(readFileSync(join(bundle.dir, 'rootfs/tmp/process-ran'), 'utf8')).toBe('process\n');
    const d = ts('delete', id);
    expect(d.status, d.stderr).toBe(0);
    lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
    expect(JSON.parse(lines[4]!.split(' ').slice(2).join(' '))).toMatchObject({ id, status: 'stopped', pid: state.pid });
    rmSync(out, { force: true });
  });

  it('fails create when a prestart hook fails, removes the container and runs poststop', () => {
    const out = join(bundle.dir, 'fail.log');
    const spec = testSpec(['/bin/true']) as Record<string, any>;
    spec.hooks = { prestart: [{ path: '/bin/false', args: ['false'] }], createContainer: [hook('createContainer', out)], poststop: [hook('poststop', out)] };
    bundle.writeSpec(spec);
    const id = `hookfail${process.pid}`;
    const c = create(id);
    expect(c.status).not.toBe(0);
    expect(c.out).toMatch(/prestart hook \/bin\/false exited with status 1/);
    expect(ts('state', id).status).not.toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['poststop']);
    rmSync(out, { force: true });
  });

  it('kills a hook past its timeout and fails create', () => {
    const spec = testSpec(['/bin/true']) as Record<string, any>;
    spec.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
    bundle.writeSpec(spec);
    const t0 = Date.now();
    const c = create(`hookslow${process.pid}`);
    expect(c.status).not.toBe(0);
    expect(c.out).toMatch(/createRuntime hook \/bin\/sleep timed out after 1 s/);
    expect(Date.now() - t0).toBeLessThan(25_000);
  });

  it.skipIf(!!pyWhy)('--console-socket sends the pty master over SCM_RIGHTS', async () => {
    const sock = join(root, 'console.sock');
    const got = join(root, 'console.out');
    // receives one fd, then copies what the pty says until EOF/EIO
    const py = [
      'import socket, sys, os',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)',
      'print("ready", flush=True)',
      'c, _ = s.accept()',
      'msg, fds, _, _ = socket.recv_fds(c, 1024, 1)',
      'out = open(sys.argv[2], "wb"); out.write(b"name=" + msg + b"\\n")',
      'while True:',
      '    try: b = os.read(fds[0], 4096)',
      '    except OSError: break',
      '    if not b: break',
      '    out.write(b); out.flush()',
    ].join('\n');
    const recv = spawn('python3', ['-c', py, sock, got], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => recv.stdout!.once('data', () => res()));
    const spec = testSpec(['/bin/sh', '-c', 'tty; echo hello-from-pty']) as Record<string, any>;
    spec.process.terminal = true;
    bundle.writeSpec(spec);
    const id = `console${process.pid}`;
    const c = create(id, '--console-socket', sock);
    expect(c.status, c.out).toBe(0);
    expect(ts('start', id).status).toBe(0);
    await new Promise<void>((res) => recv.once('exit', () => res()));
    await waitStopped(id);
    expect(ts('delete', id).status).toBe(0);
    const text = readFileSync(got, 'utf8');
    expect(text).toMatch(/^name=\/dev\/pts\/\d+/);
    expect(text).toMatch(/\/dev\/pts\/0\r?\n/);
    expect(text).toContain('hello-from-pty');
  });

  it('refuses --console-socket without process.terminal', () => {
    bundle.writeSpec(testSpec(['/bin/true']));
    const c = create(`noterm${process.pid}`, '--console-socket', join(root, 'none.sock'));
    expect(c.status).not.toBe(0);
    expect(c.out).toMatch(/console socket needs process.terminal/);
  });
});
