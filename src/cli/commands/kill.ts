import type { Command } from 'commander';
import { constants as osc } from 'node:os';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { normalizeSignal } from './stop.js';

/** `tsbuild kill [-s SIG] CONTAINER...`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .option('-s, --signal <sig>', 'signal name or number', 'SIGKILL')
    .action(async (refs: string[], o: { signal: string }) => {
      const c = ctx();
      const sig = normalizeSignal(o.signal);
      const n = /^\d+$/.test(sig) ? Number(sig) : (osc.signals as Record<string, number>)[sig];
      if (n === undefined || n <= 0 || n > 64) throw new UsageError('INVALID_ARGUMENT', `invalid signal ${JSON.stringify(o.signal)}`);
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      const { killContainer } = await import('../../../runtime/container/lifecycle.js');
      for (const ref of refs) {
        await killContainer(c.root, await resolveContainer(c.root, ref), n);
        c.stdout.write(`${ref}\n`);
      }
    });
}
