import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { ContainerInfo } from '../../../runtime/container/records.js';

/** docker's "5 seconds", "About a minute", "3 hours". */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

/**
 * docker ps STATUS: `Up 3 seconds`, `Up 3 seconds (Paused)`, `Up 3 seconds (healthy)` (or
 * `(health: starting)`, `(unhealthy)`), `Restarting (1) 2 seconds ago`, `Exited (0) 2 minutes ago`, `Created`.
 */
export function statusText(i: ContainerInfo, now = Date.now()): string {
  const st = i.status;
  switch (st.status) {
    case 'created':
      return 'Created';
    case 'running':
    case 'paused': {
      const h = st.health?.Status;
      const suffix = st.status === 'paused' ? ' (Paused)' : h === 'starting' ? ' (health: starting)' : h ? ` (${h})` : '';
      return `Up ${humanDuration(now - Date.parse(st.startedAt ?? i.record.created))}${suffix}`;
    }
    case 'restarting':
      return `Restarting (${st.exitCode ?? 255}) ${humanDuration(now - Date.parse(st.finishedAt ?? i.record.created))} ago`;
    default:
      return `Exited (${st.exitCode ?? 255}) ${humanDuration(now - Date.parse(st.finishedAt ?? i.record.created))} ago`;
  }
}

/** The command as docker shows it: joined with spaces, quoted. */
export function commandText(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** One `ps --format json` row (docker's field names). */
export function psRow(i: ContainerInfo, noTrunc: boolean): Record<string, unknown> {
  return {
    ID: noTrunc ? i.record.id : i.record.id.slice(0, 12),
    Image: i.record.image,
    Command: commandText(i.record.command),
    CreatedAt: i.record.created,
    RunningFor: humanDuration(Date.now() - Date.parse(i.record.created)),
    Status: statusText(i),
    State: i.status.status,
    ExitCode: i.status.status === 'exited' ? (i.status.exitCode ?? 255) : null,
    Names: i.record.name,
    Ports: (i.record.ports ?? []).map((p) => `${p.hostIP ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', '),
  };
}

/** `tsbuild ps [-a] [-q] [--no-trunc] [--format table|json]`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .option('-a, --all', 'show all containers (default: only running ones)')
    .option('-q, --quiet', 'only print container ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .option('--format <fmt>', 'table or json (one JSON object per line)', 'table')
    .action(async (o: { all?: boolean; quiet?: boolean; trunc: boolean; format: string }) => {
      const c = ctx();
      const { listInfos } = await import('../../../runtime/container/records.js');
      const list = (await listInfos(c.root)).filter((i) => o.all || i.status.status !== 'exited' && i.status.status !== 'created');
      const noTrunc = o.trunc === false;
      if (o.quiet) {
        for (const i of list) c.stdout.write(`${noTrunc ? i.record.id : i.record.id.slice(0, 12)}\n`);
        return;
      }
      if (o.format === 'json') {
        for (const i of list) c.stdout.write(`${JSON.stringify(psRow(i, noTrunc))}\n`);
        return;
      }
      const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
      for (const i of list) {
        const r = psRow(i, noTrunc);
        const cmdText = `"${noTrunc ? String(r.Command) : truncate(String(r.Command), 20)}"`;
        rows.push([String(r.ID), String(r.Image), cmdText, `${String(r.RunningFor)} ago`, String(r.Status), String(r.Ports), String(r.Names)]);
      }
      const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
      for (const r of rows) c.stdout.write(`${r.map((v, k) => (k === r.length - 1 ? v : v.padEnd(widths[k]! + 3))).join('')}\n`);
    });
}
