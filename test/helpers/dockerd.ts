/**
 * A private dockerd (Debian's docker.io) for interop tests: data and exec roots in a temp dir,
 * its own socket, no iptables and no bridge (containers run with --network none). Loopback
 * registries (127.0.0.0/8) are insecure by default in docker, so a test registry on 127.0.0.1
 * needs no daemon config.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstReason, needRoot, needTool } from './capabilities.js';
import { run, type RunResult } from './tools.js';

/** The docker client of Debian's docker.io. */
export const DOCKER = '/usr/bin/docker';

/** Why a private dockerd cannot be started here, or undefined. */
export function dockerdSkipReason(): string | undefined {
  return firstReason(needRoot(), needTool('dockerd'), existsSync(DOCKER) ? undefined : `${DOCKER} (Debian docker.io) is not installed`);
}

/** A running private dockerd. */
export interface PrivateDockerd {
  readonly dir: string;
  /** Runs the docker client against this daemon. */
  docker(args: readonly string[], opts?: { timeout?: number }): Promise<RunResult>;
  /** Stops the daemon (SIGTERM, SIGKILL after 30 s), unmounts what it left and removes its dir. */
  stop(): Promise<void>;
}

/** Starts a private dockerd and waits until it answers; throws with its log when it does not start. */
export async function startDockerd(): Promise<PrivateDockerd> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-dockerd-'));
  const sock = join(dir, 'sock');
  const docker = (args: readonly string[], opts: { timeout?: number } = {}): Promise<RunResult> =>
    run(DOCKER, ['-H', `unix://${sock}`, ...args], { timeout: opts.timeout ?? 300_000 });
  const log = openSync(join(dir, 'log'), 'w');
  const d: ChildProcess = spawn(
    'dockerd',
    ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'pid'), '-H', `unix://${sock}`, '--iptables=false', '--ip-masq=false', '--bridge=none'],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const stop = async (): Promise<void> => {
    if (d.exitCode === null && d.signalCode === null) {
      const exited = new Promise((r) => d.once('exit', r));
      d.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (d.exitCode === null && d.signalCode === null) {
        d.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
    }
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
    for (const m of mounts.reverse()) await run('umount', ['-l', m]);
    rmSync(dir, { recursive: true, force: true });
  };
  let up = false;
  for (let i = 0; i < 120 && !up && d.exitCode === null; i++) {
    up = existsSync(sock) && (await docker(['version'], { timeout: 10_000 })).code === 0;
    if (!up) await sleep(500);
  }
  if (!up) {
    const text = readFileSync(join(dir, 'log'), 'utf8');
    await stop();
    throw new Error(`dockerd did not start: ${text.trim().split('\n').slice(-5).join('\n')}`);
  }
  return { dir, docker, stop };
}
