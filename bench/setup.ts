/**
 * Setup helpers shared by the bench cases: running untimed setup commands, unmounting what a
 * case left mounted, and the private Docker engine that the docker cases start and stop.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaseContext, Step } from './harness.js';

/** Runs an untimed setup step in the case's work dir; throws naming `what` on failure; returns stdout. */
export function sh(ctx: CaseContext, what: string, step: Step): string {
  const r = spawnSync(step.cmd, step.args as string[], { encoding: 'utf8', cwd: step.cwd ?? ctx.work, env: { ...process.env, ...step.env } });
  if (r.status !== 0) throw new Error(`setup: ${what} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout;
}

/** Unmounts whatever is still mounted under `dir` (deepest first). */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' ')).filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
}

/** The Docker client: Debian's docker.io (20.10, with BuildKit), else another on PATH. */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/** The private dockerd of each case, by work dir. */
const dockerds = new Map<string, ChildProcess>();

/** Docker client arguments talking to the case's private dockerd. */
export const dockerArgs = (ctx: CaseContext, ...args: string[]): string[] => ['-H', `unix://${join(ctx.work, 'docker', 'sock')}`, ...args];

/**
 * Starts a private dockerd with its data and exec roots under `<work>/docker` (no iptables, no
 * bridge) and waits until it answers; returns a skip reason when it does not start.
 */
export async function startDockerd(ctx: CaseContext): Promise<string | undefined> {
  const dir = join(ctx.work, 'docker');
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'log');
  const log = openSync(logFile, 'w');
  const d = spawn('dockerd', ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'pid'), '-H', `unix://${join(dir, 'sock')}`, '--iptables=false', '--ip-masq=false', '--bridge=none'], { stdio: ['ignore', log, log] });
  closeSync(log);
  dockerds.set(ctx.work, d);
  for (let i = 0; i < 120 && d.exitCode === null; i++) {
    if (existsSync(join(dir, 'sock')) && spawnSync(DOCKER, dockerArgs(ctx, 'version'), { stdio: 'ignore' }).status === 0) return undefined;
    await sleep(500);
  }
  return `dockerd did not start: ${readFileSync(logFile, 'utf8').trim().split('\n').slice(-1)[0] ?? ''}`;
}

/** Stops the case's private dockerd (SIGTERM, SIGKILL after 30 s), if one was started. */
export async function stopDockerd(ctx: CaseContext): Promise<void> {
  const d = dockerds.get(ctx.work);
  dockerds.delete(ctx.work);
  if (d && d.exitCode === null && d.signalCode === null) {
    const exited = new Promise((r) => d.once('exit', r));
    d.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  }
}
