import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { parseGoDuration } from '../../../runtime/health/health.js';

/**
 * docker's --since/--until values: RFC 3339 (with or without fraction and zone; date only),
 * unix seconds with an optional fraction, or a duration back from `now` (10m, 1h30m). Milliseconds.
 */
export function parseLogTime(v: string, flag: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const d = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v) ? parseGoDuration(v) : undefined;
  if (d !== undefined) return now - Math.round(d / 1e6);
  if (/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?$/.test(v)) {
    // a date alone is midnight UTC; a time without a zone is local, as docker reads them
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw new UsageError('INVALID_ARGUMENT', `invalid value ${JSON.stringify(v)} for ${flag}: an RFC 3339 time, unix seconds, or a duration such as 10m`);
}

/** `tsbuild logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER`: stdout entries to stdout, stderr entries to stderr. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<container>', 'container name or id (prefix)')
    .option('-f, --follow', 'follow the log until the container exits')
    .option('-n, --tail <n>', 'only the last N lines ("all" for every line)', 'all')
    .option('-t, --timestamps', 'prefix each line with its RFC 3339 time')
    .option('--since <time>', 'only lines since a time: RFC 3339, unix seconds, or relative (10m, 1h30m)')
    .option('--until <time>', 'only lines before a time: RFC 3339, unix seconds, or relative (10m, 1h30m)')
    .action(async (ref: string, o: { follow?: boolean; tail: string; timestamps?: boolean; since?: string; until?: string }) => {
      const c = ctx();
      const since = o.since !== undefined ? parseLogTime(o.since, '--since') : undefined;
      const until = o.until !== undefined ? parseLogTime(o.until, '--until') : undefined;
      const inRange = (e: { time: string }) => {
        if (since === undefined && until === undefined) return true;
        const t = Date.parse(e.time);
        return (since === undefined || t >= since) && (until === undefined || t <= until);
      };
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
      for (const e of entries) if (inRange(e)) write(e);
      if (!o.follow) return;
      for (;;) {
        const info = await containerInfo(c.root, id);
        const done = !info || info.status.status === 'exited';
        // rotated meanwhile: the new file starts from 0
        const size = await stat(path).then((st) => st.size, () => 0);
        if (size < end) end = 0;
        const next = await readLog(path, end);
        for (const e of next.entries) if (inRange(e)) write(e);
        end = next.end;
        if (done || (until !== undefined && Date.now() > until)) return;
        await sleep(100);
      }
    });
}
