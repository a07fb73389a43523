import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { ImageStore } from '../../oci/store/image-store.js';

/** `tsbuild fsck [--format json]`: verifies every blob and every image's references; exit 1 on problems. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.option('--format <fmt>', 'output format: text or json', 'text').action(async (opts: { format: string }) => {
    const c = ctx();
    const store = await ImageStore.open(c.root, { logger: c.logger });
    const res = await store.fsck();
    if (opts.format === 'json') c.stdout.write(`${JSON.stringify(res)}\n`);
    else {
      for (const b of res.bad) c.stdout.write(`${b.digest}: ${b.problem}\n`);
      c.stdout.write(`checked ${res.checked} blobs, ${res.bad.length} problem${res.bad.length === 1 ? '' : 's'}\n`);
    }
    if (res.bad.length) throw new ExitStatus(1);
  });
}
