import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { ContainerInfo } from '../../../runtime/container/records.js';
import { commandText, statusText } from './ps.js';

/** docker inspect's JSON of one container. */
export function inspectContainer(i: ContainerInfo, logPath: string): Record<string, unknown> {
  const { record: r, status: s } = i;
  const live = s.status === 'running' || s.status === 'paused';
  return {
    Id: r.id, Created: r.created, Path: r.command[0] ?? '', Args: r.command.slice(1),
    State: {
      Status: s.status, Running: live, Paused: s.status === 'paused', Restarting: s.status === 'restarting', Pid: live ? (s.pid ?? 0) : 0,
      ExitCode: s.status === 'exited' || s.status === 'restarting' ? (s.exitCode ?? 255) : 0, Error: s.error ?? '',
      StartedAt: s.startedAt ?? '0001-01-01T00:00:00Z', FinishedAt: s.finishedAt ?? '0001-01-01T00:00:00Z',
      ...(s.signal ? { Signal: s.signal } : {}), Text: statusText(i),
      ...(r.healthcheck ? { Health: s.health ?? { Status: 'starting', FailingStreak: 0, Log: [] } } : {}),
    },
    Image: r.imageId ?? '', Name: `/${r.name}`, LogPath: logPath, RestartCount: s.restartCount ?? 0,
    Config: {
      Hostname: r.hostname, Image: r.image, Cmd: r.command, Env: r.env, Tty: r.tty, OpenStdin: !!r.openStdin, StopSignal: r.stopSignal,
      ...(r.healthcheck ? { Healthcheck: r.healthcheck } : {}),
    },
    NetworkSettings: { IPAddress: r.address ?? '', Ports: r.ports ?? [], Network: r.network },
    HostConfig: {
      AutoRemove: r.autoRemove, NetworkMode: r.network, Init: r.init, CgroupParent: r.cgroupName.split('/').slice(0, -1).join('/'),
      RestartPolicy: r.restartPolicy ?? { Name: 'no', MaximumRetryCount: 0 },
    },
    Mounts: (r.mounts ?? []).map((m) => ({
      Type: m.type, ...(m.name ? { Name: m.name } : {}), Source: m.source, Destination: m.destination,
      Mode: m.readonly ? 'ro' : '', RW: !m.readonly, Propagation: m.propagation ?? '',
    })),
    CommandLine: commandText(r.command),
  };
}

/** `tsbuild container inspect CONTAINER...`: docker-style JSON array. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.description('manage containers (see also run, ps, logs, exec, stop, kill, rm, wait, pause, unpause)');
  cmd
    .command('inspect')
    .argument('<containers...>', 'container names or ids')
    .description('show the configuration and state of containers as JSON')
    .action(async (refs: string[]) => {
      const c = ctx();
      const { resolveContainer, containerInfo, recordPaths } = await import('../../../runtime/container/records.js');
      const out: unknown[] = [];
      for (const ref of refs) {
        const id = await resolveContainer(c.root, ref);
        const i = await containerInfo(c.root, id);
        if (!i) continue;
        out.push(inspectContainer(i, recordPaths(c.root, id).log));
      }
      c.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
  cmd
    .command('ls')
    .option('-a, --all', 'show all containers')
    .option('-q, --quiet', 'only print container ids')
    .description('list containers (same as ps)')
    .action(async (o: { all?: boolean; quiet?: boolean }) => {
      const c = ctx();
      const { listInfos } = await import('../../../runtime/container/records.js');
      for (const i of await listInfos(c.root)) {
        if (!o.all && i.status.status === 'exited') continue;
        c.stdout.write(o.quiet ? `${i.record.id.slice(0, 12)}\n` : `${i.record.id.slice(0, 12)}  ${i.record.name}  ${statusText(i)}\n`);
      }
    });
}
