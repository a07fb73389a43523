import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { commandText, statusText } from './ps.js';

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
        const { record: r, status: s } = i;
        const live = s.status === 'running' || s.status === 'paused';
        out.push({
          Id: r.id, Created: r.created, Path: r.command[0] ?? '', Args: r.command.slice(1),
          State: {
            Status: s.status, Running: live, Paused: s.status === 'paused', Pid: live ? (s.pid ?? 0) : 0,
            ExitCode: s.status === 'exited' ? (s.exitCode ?? 255) : 0, Error: s.error ?? '',
            StartedAt: s.startedAt ?? '0001-01-01T00:00:00Z', FinishedAt: s.finishedAt ?? '0001-01-01T00:00:00Z',
            ...(s.signal ? { Signal: s.signal } : {}), Text: statusText(i),
          },
          Image: r.imageId ?? '', Name: `/${r.name}`, LogPath: recordPaths(c.root, id).log,
          Config: { Hostname: r.hostname, Image: r.image, Cmd: r.command, Env: r.env, Tty: r.tty, StopSignal: r.stopSignal },
          NetworkSettings: { IPAddress: r.address ?? '', Ports: r.ports ?? [], Network: r.network },
          HostConfig: { AutoRemove: r.autoRemove, NetworkMode: r.network, Init: r.init, CgroupParent: r.cgroupName.split('/').slice(0, -1).join('/') },
          CommandLine: commandText(r.command),
        });
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
