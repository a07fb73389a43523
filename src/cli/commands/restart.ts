import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';

/** `tsbuild restart [-t N] CONTAINER...`: stop (STOPSIGNAL, SIGKILL after N s) and start again, same container. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait for the stop before SIGKILL', '10')
    .action(async (refs: string[], o: { time: string }) => {
      const c = ctx();
      if (!/^\d+$/.test(o.time)) throw new UsageError('INVALID_ARGUMENT', `invalid --time value ${JSON.stringify(o.time)}`);
      const { restartContainer } = await import('../../../runtime/monitor/restart-container.js');
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      for (const ref of refs) {
        await restartContainer(c.root, await resolveContainer(c.root, ref), { timeoutSec: Number(o.time) });
        c.stdout.write(`${ref}\n`);
      }
    });
}
