import type { Command } from 'commander';
import { totalmem } from 'node:os';
import type { CliContext } from '../context.js';
import type { ContainerStats } from '../../../runtime/container/lifecycle.js';

function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(2) : n}${u[i]}`;
}

/** `tsbuild stats [--no-stream] [--format json] [CONTAINER...]` (default: every running container). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('[containers...]', 'container names or ids (default: all running)')
    .option('--no-stream', 'print one sample and exit')
    .option('--format <fmt>', 'table or json (one object per line and container)', 'table')
    .action(async (refs: string[], o: { stream: boolean; format: string }) => {
      const c = ctx();
      const { resolveContainer, listInfos } = await import('../../../runtime/container/records.js');
      const { containerStats } = await import('../../../runtime/container/lifecycle.js');
      const ids = refs.length
        ? await Promise.all(refs.map((r) => resolveContainer(c.root, r)))
        : (await listInfos(c.root)).filter((i) => i.status.status === 'running' || i.status.status === 'paused').map((i) => i.record.id);
      for (;;) {
        const all: ContainerStats[] = await Promise.all(ids.map((id) => containerStats(c.root, id)));
        if (o.format === 'json') {
          for (const s of all) {
            c.stdout.write(`${JSON.stringify({ ID: s.id.slice(0, 12), Name: s.name, CPUPerc: `${s.cpuPercent.toFixed(2)}%`, MemUsage: s.memUsage, MemLimit: s.memLimit ?? totalmem(), PIDs: s.pids, BlockRead: s.blockRead, BlockWrite: s.blockWrite, NetRx: s.netRx, NetTx: s.netTx })}\n`);
          }
        } else {
          c.stdout.write(`${'CONTAINER ID'.padEnd(15)}${'NAME'.padEnd(20)}${'CPU %'.padEnd(9)}${'MEM USAGE / LIMIT'.padEnd(24)}${'NET I/O'.padEnd(22)}${'BLOCK I/O'.padEnd(22)}PIDS\n`);
          for (const s of all) {
            c.stdout.write(`${s.id.slice(0, 12).padEnd(15)}${s.name.padEnd(20)}${`${s.cpuPercent.toFixed(2)}%`.padEnd(9)}${`${bytes(s.memUsage)} / ${bytes(s.memLimit ?? totalmem())}`.padEnd(24)}${`${bytes(s.netRx)} / ${bytes(s.netTx)}`.padEnd(22)}${`${bytes(s.blockRead)} / ${bytes(s.blockWrite)}`.padEnd(22)}${s.pids}\n`);
          }
        }
        if (!o.stream) return;
      }
    });
}
