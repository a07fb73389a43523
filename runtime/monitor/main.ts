/**
 * The monitor of one detached container: `node main.js ROOT ID`, started by `tsbuild run -d`
 * in its own session with a pipe on fd 3. It creates and starts the container through the
 * native helper (which stays the container's parent), reports `{"ok":true}` or the error as
 * one JSON line on fd 3, writes the container's stdout/stderr to the json-file log, records
 * the exit in status.json, releases the rootfs mount and the cgroup, and with --rm removes
 * the container. Then it exits.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { cgroupManagerFromPaths } from '../cgroups/manager.js';
import { createContainer, type Container } from '../container/container.js';
import {
  exitCodeOf, lockRecord, ownedStatus, readRecord, readStatus, recordPaths, releaseResources, removeRecord, writeStatus,
} from '../container/records.js';
import { JsonLogWriter } from './json-log.js';

function report(msg: Record<string, unknown>): void {
  try {
    const s = createWriteStream('', { fd: 3 });
    s.on('error', () => undefined);
    s.end(`${JSON.stringify(msg)}\n`);
  } catch {
    /* the CLI is gone */
  }
}

async function main(root: string, id: string): Promise<number> {
  const rec = await readRecord(root, id);
  if (!rec) {
    report({ ok: false, code: 'CONTAINER_NOT_FOUND', message: `container ${id} has no record` });
    return 1;
  }
  const p = recordPaths(root, id);
  const cgroup = rec.cgroup ? cgroupManagerFromPaths(rec.cgroupName, rec.cgroup.version, rec.cgroup.paths) : undefined;
  const log = await JsonLogWriter.open(p.log, rec.logRotation);
  let c: Container;
  try {
    await writeStatus(root, id, ownedStatus('created'));
    c = await createContainer({
      id, bundle: p.dir, stateRoot: p.runState, ...(cgroup ? { cgroup, cgroupName: rec.cgroupName } : {}),
      init: rec.init,
      io: { stdin: 'null', stdout: 'pipe', stderr: 'pipe' },
    });
  } catch (e) {
    const err = e as { code?: string; message?: string; step?: string; errno?: string };
    report({ ok: false, code: err.code ?? 'HELPER_FAILED', message: err.message ?? String(e), ...(err.step ? { step: err.step } : {}), ...(err.errno ? { errno: err.errno } : {}) });
    await log.close().catch(() => undefined);
    return 1;
  }
  const piped = [
    c.stdio?.stdout ? log.pipe(c.stdio.stdout, 'stdout') : Promise.resolve(),
    c.stdio?.stderr ? log.pipe(c.stdio.stderr, 'stderr') : Promise.resolve(),
  ];
  try {
    const pid = (await c.state()).pid;
    await c.start();
    await writeStatus(root, id, ownedStatus('running', { ...(pid ? { pid } : {}), startedAt: new Date().toISOString() }));
    report({ ok: true, ...(pid ? { pid } : {}) });
  } catch (e) {
    // not started: the run command reports the error and removes everything
    const err = e as { code?: string; step?: string; errno?: string; message?: string };
    report({ ok: false, code: err.code ?? 'HELPER_FAILED', message: err.message ?? String(e), ...(err.step ? { step: err.step } : {}), ...(err.errno ? { errno: err.errno } : {}) });
    await c.delete({ force: true }).catch(() => undefined);
    await log.close().catch(() => undefined);
    return 1;
  }
  let result: { exitCode: number; signal?: string } | undefined;
  let error: string | undefined;
  try {
    result = await c.wait();
  } catch (e) {
    error = (e as Error).message;
  }
  await Promise.race([Promise.all(piped), new Promise((r) => setTimeout(r, 2000).unref())]);
  await log.close().catch(() => undefined);
  const release = await lockRecord(root, id);
  try {
    const prev = await readStatus(root, id);
    await releaseResources(root, rec);
    if (rec.autoRemove) {
      await removeRecord(root, rec);
    } else {
      await writeStatus(root, id, {
        status: 'exited', ...(prev?.pid ? { pid: prev.pid } : {}), ...(prev?.startedAt ? { startedAt: prev.startedAt } : {}),
        finishedAt: new Date().toISOString(), exitCode: result ? exitCodeOf(result) : 255,
        ...(result?.signal ? { signal: result.signal } : {}), ...(error ? { error } : {}),
      });
    }
  } finally {
    await release().catch(() => undefined);
  }
  return result ? 0 : 1;
}

const [root, id] = process.argv.slice(2);
process.title = `tsbuild-monitor ${id?.slice(0, 12) ?? ''}`;
for (const s of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(s, () => undefined);
if (!root || !id) {
  process.stderr.write('usage: main.js ROOT ID\n');
  process.exitCode = 2;
} else {
  main(root, join(id)).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      process.stderr.write(`tsbuild-monitor: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
