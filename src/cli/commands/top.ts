import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { CliContext } from '../context.js';

/** `tsbuild top CONTAINER`: the processes of a container's cgroup (host pids). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<container>', 'container name or id')
    .action(async (ref: string) => {
      const c = ctx();
      const { resolveContainer, containerInfo } = await import('../../../runtime/container/records.js');
      const { cgroupManagerFromPaths } = await import('../../../runtime/cgroups/manager.js');
      const { RuntimeError } = await import('../../../runtime/errors.js');
      const id = await resolveContainer(c.root, ref);
      const i = await containerInfo(c.root, id);
      if (!i || (i.status.status !== 'running' && i.status.status !== 'paused') || !i.record.cgroup) throw new RuntimeError('INVALID_STATE', `container ${ref} is not running`);
      const pids = await cgroupManagerFromPaths(i.record.cgroupName, i.record.cgroup.version, i.record.cgroup.paths).pids();
      c.stdout.write(`${'PID'.padEnd(10)}${'PPID'.padEnd(10)}${'UID'.padEnd(8)}CMD\n`);
      for (const pid of [...pids].sort((a, b) => a - b)) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '';
          const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
          c.stdout.write(`${String(pid).padEnd(10)}${ppid.padEnd(10)}${uid.padEnd(8)}${cmdline}\n`);
        } catch {
          /* exited meanwhile */
        }
      }
    });
}
