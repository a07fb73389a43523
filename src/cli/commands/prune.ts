import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ImageStore, GC_ROOTS_DIR } from '../../oci/store/image-store.js';
import type { Digest } from '../../oci/digest.js';
import { humanSize } from '../../oci/store/describe.js';

/**
 * `tsbuild prune [-a] [--dry-run] [--format json]`: removes untagged images (with -a: every
 * image that no gc root keeps), then every blob no image or gc root reaches.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .option('-a, --all', `remove all images not kept by a gc root (<root>/${GC_ROOTS_DIR}/*), not only untagged ones`)
    .option('--dry-run', 'only report what would be removed')
    .option('--format <fmt>', 'output format: text or json', 'text')
    .action(async (opts: { all?: boolean; dryRun?: boolean; format: string }) => {
      const c = ctx();
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const kept = new Set<string>();
      if (opts.all) {
        for (const d of await store.gcRoots()) kept.add(d);
      }
      const images: Digest[] = [];
      for (const r of await store.list()) {
        if (r.name !== '' && !opts.all) continue;
        if (kept.has(r.descriptor.digest) || kept.has(r.id)) continue;
        images.push(r.id);
      }
      const uniq = [...new Set(images)];
      if (!opts.dryRun) for (const id of uniq) await store.removeId(id);
      const res = await store.gc({ dryRun: !!opts.dryRun });
      if (opts.format === 'json') {
        c.stdout.write(`${JSON.stringify({ deletedImages: uniq, deletedBlobs: res.removed, reclaimedBytes: res.bytes, dryRun: !!opts.dryRun })}\n`);
        return;
      }
      if (uniq.length) c.stdout.write(`Deleted Images:\n${uniq.map((i) => `deleted: ${i}\n`).join('')}\n`);
      c.stdout.write(`Total reclaimed space: ${humanSize(res.bytes)}${opts.dryRun ? ' (dry run)' : ''}\n`);
    });
}
