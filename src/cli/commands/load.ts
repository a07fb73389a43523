import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { readArchivePath, readArchiveStream } from '../../oci/archive/read.js';
import { familiarName, parseReference } from '../../oci/reference.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { UsageError } from '../../util/errors.js';

/**
 * `tsbuild load [-i FILE|DIR]`: loads a docker-archive (Docker 25+ or classic), an OCI archive or
 * an OCI layout directory; prints `Loaded image: NAME` (or `Loaded image ID: ID` when untagged).
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .option('-i, --input <path>', 'archive file (tar, tar.gz, tar.zst) or OCI layout directory (default: stdin)')
    .option('-q, --quiet', 'print nothing')
    .action(async (opts: { input?: string; quiet?: boolean }) => {
      const c = ctx();
      if (!opts.input && process.stdin.isTTY) throw new UsageError('INVALID_ARGUMENT', 'load needs -i FILE|DIR or an archive on stdin');
      const store = await ImageStore.open(c.root, { logger: c.logger });
      await store.withLease(async () => {
        const res = opts.input && opts.input !== '-' ? await readArchivePath(opts.input, store.content) : await readArchiveStream(process.stdin, store.content, 'archive on stdin');
        c.logger.debug(`load: ${opts.input ?? 'stdin'} is a ${res.format}`);
        for (const img of res.images) {
          if (img.names.length === 0) {
            const rec = await store.addUntagged(img.descriptor);
            if (!opts.quiet) c.stdout.write(`Loaded image ID: ${rec.id}\n`);
            continue;
          }
          for (const n of img.names) {
            await store.tag(n, img.descriptor);
            if (!opts.quiet) c.stdout.write(`Loaded image: ${familiarName(parseReference(n))}\n`);
          }
        }
      });
    });
}
