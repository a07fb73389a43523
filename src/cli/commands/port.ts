import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `tsbuild port CONTAINER`: published ports as `80/tcp -> 127.0.0.1:8080`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<container>', 'container name or id')
    .action(async (ref: string) => {
      const c = ctx();
      const { resolveContainer, readRecord } = await import('../../../runtime/container/records.js');
      const rec = await readRecord(c.root, await resolveContainer(c.root, ref));
      for (const p of rec?.ports ?? []) c.stdout.write(`${p.containerPort}/${p.protocol} -> ${p.hostIP ?? '0.0.0.0'}:${p.hostPort}\n`);
    });
}
