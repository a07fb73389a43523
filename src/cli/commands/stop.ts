import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';

/** `tsbuild stop [-t N] [-s SIG] CONTAINER...`: STOPSIGNAL, then SIGKILL after the timeout. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL', '10')
    .option('-s, --signal <sig>', "signal to send first (default: the image's STOPSIGNAL, else SIGTERM)")
    .action(async (refs: string[], o: { time: string; signal?: string }) => {
      const c = ctx();
      if (!/^\d+$/.test(o.time)) throw new UsageError('INVALID_ARGUMENT', `invalid --time value ${JSON.stringify(o.time)}`);
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      const { stopContainer } = await import('../../../runtime/container/lifecycle.js');
      for (const ref of refs) {
        await stopContainer(c.root, await resolveContainer(c.root, ref), { timeoutSec: Number(o.time), ...(o.signal ? { signal: normalizeSignal(o.signal) } : {}) });
        c.stdout.write(`${ref}\n`);
      }
    });
}

/** `9`, `KILL`, `SIGKILL` -> `SIGKILL` (or the number). */
export function normalizeSignal(s: string): string {
  if (/^\d+$/.test(s)) return s;
  const u = s.toUpperCase();
  return u.startsWith('SIG') ? u : `SIG${u}`;
}
