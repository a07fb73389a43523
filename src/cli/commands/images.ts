import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { shortId, ImageStore } from '../../oci/store/image-store.js';
import { humanSize, summarise, timeAgo } from '../../oci/store/describe.js';
import { UsageError } from '../../util/errors.js';

/** `tsbuild images [-a] [--format json]`: lists local images (tagged; -a adds untagged ones). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .option('-a, --all', 'also list untagged images')
    .option('-q, --quiet', 'only print image IDs')
    .option('--format <fmt>', 'output format: table or json', 'table')
    .action(async (opts: { all?: boolean; quiet?: boolean; format: string }) => {
      const c = ctx();
      if (opts.format !== 'table' && opts.format !== 'json') throw new UsageError('INVALID_ARGUMENT', `--format: want table or json, got ${opts.format}`);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const records = (await store.list()).filter((r) => opts.all || r.name !== '');
      const rows = await Promise.all(records.map((r) => summarise(store, r)));
      if (opts.format === 'json') {
        c.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (opts.quiet) {
        c.stdout.write([...new Set(rows.map((r) => shortId(r.ID)))].map((s) => `${s}\n`).join(''));
        return;
      }
      const table = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows.map((r) => [r.Repository, r.Tag, shortId(r.ID), timeAgo(r.Created), humanSize(r.Size)])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      c.stdout.write(table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('')).join('\n') + '\n');
    });
}
