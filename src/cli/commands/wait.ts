import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RuntimeError } from '../../../runtime/errors.js';

/** `tsbuild wait CONTAINER...`: blocks until each exits and prints its exit code. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .action(async (refs: string[]) => {
      const c = ctx();
      const { resolveContainer, waitExited } = await import('../../../runtime/container/records.js');
      for (const ref of refs) {
        const i = await waitExited(c.root, await resolveContainer(c.root, ref));
        // a --rm container is gone once it exited, and its exit code with it
        if (!i) throw new RuntimeError('CONTAINER_NOT_FOUND', `container ${ref} was removed on exit (--rm), so its exit code is not known`);
        c.stdout.write(`${i.status.exitCode ?? 255}\n`);
      }
    });
}
