import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `tsbuild pause CONTAINER...` (cgroup freezer). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .action(async (refs: string[]) => {
      const c = ctx();
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      const { pauseContainer } = await import('../../../runtime/container/lifecycle.js');
      for (const ref of refs) {
        await pauseContainer(c.root, await resolveContainer(c.root, ref), true);
        c.stdout.write(`${ref}\n`);
      }
    });
}
