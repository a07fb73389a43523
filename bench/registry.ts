/**
 * A throw-away local registry for the transfer cases: Debian's docker-registry (distribution 2.8)
 * on 127.0.0.1, plain HTTP, no auth, its storage in a directory of the case. `restart()` wipes the
 * storage and starts it again on the same port, so that every timed push uploads every blob
 * (a registry that already has a blob would turn the push into a HEAD request).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The registry binary (Debian package docker-registry). */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** Why a local registry cannot run here, or undefined. */
export function needRegistry(): string | undefined {
  return existsSync(REGISTRY_BIN) ? undefined : `${REGISTRY_BIN} is not installed (Debian package docker-registry)`;
}

/** A running bench registry. */
export interface BenchRegistry {
  /** `127.0.0.1:<port>` */
  readonly host: string;
  /** Stops it, removes its storage, starts it again empty on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
    req.end();
  });
}

/** Starts an empty registry whose config and storage live under `dir`. */
export async function startBenchRegistry(dir: string): Promise<BenchRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const data = join(dir, 'data');
  const config = join(dir, 'config.yml');
  await mkdir(dir, { recursive: true });
  await writeFile(
    config,
    ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${data}`, 'http:', `  addr: ${host}`, ''].join('\n'),
  );
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await exited;
    }
  };
  const start = async (): Promise<void> => {
    await rm(data, { recursive: true, force: true });
    let stderr = '';
    const c = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-2000)));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) break;
      if (await answers(`http://${host}/v2/`)) return;
      await sleep(50);
    }
    await stop();
    throw new Error(`docker-registry did not start on ${host}: ${stderr.trim()}`);
  };
  await start();
  return {
    host,
    restart: async () => {
      await stop();
      await start();
    },
    stop: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
