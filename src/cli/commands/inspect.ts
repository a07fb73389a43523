import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { parsePlatform } from '../../oci/platform.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { inspectImage, type ImageInspect } from '../../oci/store/describe.js';
import { formatErrorChain, UsageError } from '../../util/errors.js';

/** `tsbuild inspect IMAGE... [--format json]`: docker-inspect-shaped JSON (config, history, manifest). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<image...>', 'image names or IDs')
    .option('--format <fmt>', 'output format: json', 'json')
    .option('--platform <os/arch[/variant]>', 'which manifest of a multi-platform image')
    .action(async (images: string[], opts: { format: string; platform?: string }) => {
      const c = ctx();
      if (opts.format !== 'json') throw new UsageError('INVALID_ARGUMENT', `--format: only json is supported, got ${opts.format}`);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const out: ImageInspect[] = [];
      let failed = false;
      for (const name of images) {
        try {
          const rec = await store.resolve(name);
          out.push(await inspectImage(store, rec, opts.platform ? parsePlatform(opts.platform) : undefined));
        } catch (e) {
          failed = true;
          c.stderr.write(`tsbuild: ${formatErrorChain(e)}\n`);
        }
      }
      c.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      if (failed) throw new ExitStatus(1);
    });
}
