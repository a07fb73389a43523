import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `tsbuild wait CONTAINER...`: blocks until each exits and prints its exit code. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .action(async (refs: string[]) => {
      const c = ctx();
      const { resolveContainer, waitExited } = await import('../../../runtime/container/records.js');
      for (const ref of refs) {
        const i = await waitExited(c.root, await resolveContainer(c.root, ref));
        // a --rm container is gone once it exited; its code is not kept
        c.stdout.write(`${i?.status.exitCode ?? 0}\n`);
      }
    });
}
