import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';

/** `tsbuild logs [-f] [--tail N] [-t] CONTAINER`: stdout entries to stdout, stderr entries to stderr. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<container>', 'container name or id (prefix)')
    .option('-f, --follow', 'follow the log until the container exits')
    .option('-n, --tail <n>', 'only the last N lines ("all" for every line)', 'all')
    .option('-t, --timestamps', 'prefix each line with its RFC 3339 time')
    .action(async (ref: string, o: { follow?: boolean; tail: string; timestamps?: boolean }) => {
      const c = ctx();
      if (o.tail !== 'all' && !/^\d+$/.test(o.tail)) throw new UsageError('INVALID_ARGUMENT', `invalid --tail value ${JSON.stringify(o.tail)}: a number or "all"`);
      const { resolveContainer, recordPaths, containerInfo } = await import('../../../runtime/container/records.js');
      const { readLog, rotatedLogs } = await import('../../../runtime/monitor/json-log.js');
      const id = await resolveContainer(c.root, ref);
      const path = recordPaths(c.root, id).log;
      const write = (e: { log: string; stream: string; time: string }) => {
        const out = e.stream === 'stderr' ? c.stderr : c.stdout;
        out.write(o.timestamps ? `${e.time} ${e.log}` : e.log);
      };
      const older: Awaited<ReturnType<typeof readLog>>["entries"] = [];
      for (const f of await rotatedLogs(path)) older.push(...(await readLog(f)).entries);
      let { entries, end } = await readLog(path);
      entries = [...older, ...entries];
      if (o.tail !== 'all') entries = Number(o.tail) === 0 ? [] : entries.slice(-Number(o.tail));
      for (const e of entries) write(e);
      if (!o.follow) return;
      for (;;) {
        const info = await containerInfo(c.root, id);
        const done = !info || info.status.status === 'exited';
        // rotated meanwhile: the new file starts from 0
        const size = await stat(path).then((st) => st.size, () => 0);
        if (size < end) end = 0;
        const next = await readLog(path, end);
        for (const e of next.entries) write(e);
        end = next.end;
        if (done) return;
        await sleep(100);
      }
    });
}
