import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { UsageError } from '../../util/errors.js';
import type { CgroupManager } from '../../../runtime/cgroups/types.js';
import {
  createContainer, execInContainer, listContainers, loadContainer, loadStoredState, runContainer,
} from '../../../runtime/container/index.js';

/** Where `tsbuild runtime` keeps container state: `<store root>/runtime`. */
export function stateRootOf(ctx: CliContext): string {
  return join(ctx.root, 'runtime');
}

/**
 * The container's cgroup: the bundle's linux.cgroupsPath (absolute: from the hierarchy root;
 * relative: under tsbuild's own cgroup, as runc), else `tsbuild/<id>` under tsbuild's own cgroup.
 */
function cgroupName(id: string, bundle: string): string {
  try {
    const p = (JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: unknown } }).linux?.cgroupsPath;
    if (typeof p === 'string' && p.replace(/\/+/g, '/') !== '/' && p !== '') return p.replace(/\/+$/, '');
  } catch {
    /* create reports the unreadable config.json */
  }
  return `tsbuild/${id}`;
}

/** The cgroup manager, loaded only when a container has or gets a cgroup; an absolute name is from the hierarchy root. */
async function newCgroupManager(name: string): Promise<CgroupManager> {
  const { createCgroupManager } = await import('../../../runtime/cgroups/manager.js');
  return name.startsWith('/') ? createCgroupManager({ name: name.replace(/^\/+/, '') }, { fromRoot: true }) : createCgroupManager({ name });
}

async function cgroupFor(ctx: CliContext, id: string): Promise<CgroupManager | undefined> {
  const s = await loadStoredState(stateRootOf(ctx), id);
  return s.cgroupName ? newCgroupManager(s.cgroupName) : undefined;
}

/** Host pids in the pid namespace of `pid` (the container's processes), without a cgroup. */
function pidsInNamespaceOf(pid: number): number[] {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/pid`) === ns) out.push(Number(d));
    } catch {
      /* exited */
    }
  }
  return out.sort((a, b) => a - b);
}

function wantsTerminal(bundle: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process?: { terminal?: boolean } }).process?.terminal === true;
  } catch {
    return false;
  }
}

interface CreateFlags { bundle: string; pidFile?: string; consoleSocket?: string; init?: boolean; cgroups: boolean }

function addCreateFlags(c: Command): Command {
  return c
    .option('-b, --bundle <dir>', 'bundle directory (config.json + rootfs)', '.')
    .option('--pid-file <file>', 'write the container pid to this file')
    .option('--console-socket <path>', 'with process.terminal: send the pty master to this unix socket (SCM_RIGHTS, as runc)')
    .option('--init', 'run a pid-1 reaper that forwards signals (docker run --init)')
    .option('--no-cgroups', 'do not create a cgroup for the container (no limits, no pause)');
}

/**
 * `tsbuild runtime`: an OCI runtime CLI with runc's basic verbs. State lives under
 * `<store root>/runtime/<id>/`; `state` prints the runtime-spec state JSON.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .description('OCI runtime (runc-compatible verbs) on a bundle')
    .enablePositionalOptions()
    // runc's global flags, as OCI callers pass them; the state lives under the global --root store
    .option('--log <file>', 'accepted for runc compatibility; errors go to stderr')
    .option('--log-format <format>', 'accepted for runc compatibility (text or json); ignored');

  addCreateFlags(cmd.command('create').argument('<id>').description('create a container from a bundle; it waits for start')).action(async (id: string, o: CreateFlags) => {
    const c = ctx();
    const cgName = cgroupName(id, o.bundle);
    const cgroup = o.cgroups ? await newCgroupManager(cgName) : undefined;
    const created = await createContainer({
      id, bundle: o.bundle, stateRoot: stateRootOf(c), detach: true, logger: c.logger,
      ...(cgroup ? { cgroup, cgroupName: cgName } : {}), ...(o.pidFile ? { pidFile: o.pidFile } : {}), ...(o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}), ...(o.init ? { init: true } : {}),
    });
    void created;
  });

  cmd.command('start').argument('<id>').description('start a created container').action(async (id: string) => {
    await (await loadContainer(stateRootOf(ctx()), id, { logger: ctx().logger })).start();
  });

  cmd.command('state').argument('<id>').description('print the runtime-spec state JSON').action(async (id: string) => {
    const s = await (await loadContainer(stateRootOf(ctx()), id)).state();
    ctx().stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  });

  cmd
    .command('kill')
    .argument('<id>')
    .argument('[signal]', 'signal name or number', 'SIGTERM')
    .option('-a, --all', 'signal every process of the container (its cgroup)')
    .description('send a signal to the container')
    .action(async (id: string, signal: string, o: { all?: boolean }) => {
      const c = await loadContainer(stateRootOf(ctx()), id, { cgroup: await cgroupFor(ctx(), id) });
      const sig = /^\d+$/.test(signal) ? Number(signal) : ((signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as NodeJS.Signals);
      await c.kill(sig, { all: !!o.all });
    });

  cmd.command('delete').argument('<id>').option('-f, --force', 'kill the container first if it is running').description('delete a stopped container').action(async (id: string, o: { force?: boolean }) => {
    const c = await loadContainer(stateRootOf(ctx()), id, { cgroup: await cgroupFor(ctx(), id), logger: ctx().logger });
    await c.delete({ force: !!o.force });
  });

  addCreateFlags(cmd.command('run').argument('<id>').description('create, start and wait for a container, then delete it; exits with its status')).action(async (id: string, o: CreateFlags) => {
    const c = ctx();
    const cgName = cgroupName(id, o.bundle);
    const cgroup = o.cgroups ? await newCgroupManager(cgName) : undefined;
    const ac = new AbortController();
    // a terminal container gets our keystrokes raw; the pty in the container does the line editing
    const raw = c.stdout.isTTY && process.stdin.isTTY && wantsTerminal(o.bundle);
    if (raw) process.stdin.setRawMode(true);
    const r = await runContainer({
      id, bundle: o.bundle, stateRoot: stateRootOf(c), logger: c.logger, signal: ac.signal, forwardSignals: true,
      ...(cgroup ? { cgroup, cgroupName: cgName } : {}), ...(o.pidFile ? { pidFile: o.pidFile } : {}), ...(o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}), ...(o.init ? { init: true } : {}),
    }).finally(() => {
      if (raw) process.stdin.setRawMode(false);
    });
    if (r.exitCode !== 0) throw new ExitStatus(r.exitCode);
  });

  cmd.command('list').option('--format <fmt>', 'table or json', 'table').description('list containers').action(async (o: { format: string }) => {
    const list = await listContainers(stateRootOf(ctx()));
    if (o.format === 'json') return void ctx().stdout.write(`${JSON.stringify(list)}\n`);
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED'], ...list.map((s) => [s.id, String(s.pid ?? 0), s.status, s.bundle, s.created ?? ''])];
    const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) ctx().stdout.write(`${r.map((v, i) => v.padEnd(w[i]!)).join('   ').trimEnd()}\n`);
  });

  cmd.command('ps').argument('<id>').option('--format <fmt>', 'table or json', 'table').description('list the processes of a container (host pids)').action(async (id: string, o: { format: string }) => {
    const c = await loadContainer(stateRootOf(ctx()), id);
    const st = await c.state();
    const cg = await cgroupFor(ctx(), id);
    const pids = cg ? await cg.pids() : st.pid && st.status !== 'stopped' ? pidsInNamespaceOf(st.pid) : [];
    if (o.format === 'json') return void ctx().stdout.write(`${JSON.stringify(pids)}\n`);
    ctx().stdout.write(`PID\n${pids.map((p) => `${p}\n`).join('')}`);
  });

  cmd.command('pause').argument('<id>').description('freeze every process of the container (cgroup freezer)').action(async (id: string) => {
    await (await loadContainer(stateRootOf(ctx()), id, { cgroup: await cgroupFor(ctx(), id) })).pause();
  });

  cmd.command('resume').argument('<id>').description('thaw a paused container').action(async (id: string) => {
    await (await loadContainer(stateRootOf(ctx()), id, { cgroup: await cgroupFor(ctx(), id) })).resume();
  });

  cmd
    .command('exec')
    .passThroughOptions() // options after <id> belong to the command: exec ID sh -c 'x'
    .argument('<id>')
    .argument('<command...>')
    .option('--cwd <dir>', 'working directory in the container')
    .option('-e, --env <var>', 'environment variable (repeatable; replaces the config env)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-u, --user <uid[:gid]>', 'user to run as')
    .description('run another process in a running container')
    .action(async (id: string, command: string[], o: { cwd?: string; env: string[]; user?: string }) => {
      let user: { uid: number; gid: number } | undefined;
      if (o.user) {
        const m = /^(\d+)(?::(\d+))?$/.exec(o.user);
        if (!m) throw new UsageError('INVALID_ARGUMENT', `--user ${o.user}: expected uid[:gid]`);
        user = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
      }
      const r = await execInContainer(stateRootOf(ctx()), id, { args: command, ...(o.cwd ? { cwd: o.cwd } : {}), ...(o.env.length ? { env: o.env } : {}), ...(user ? { user } : {}) });
      if (r.exitCode !== 0) throw new ExitStatus(r.exitCode);
    });
}
