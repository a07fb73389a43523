import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatReference, parseReference } from '../../oci/reference.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { UsageError } from '../../util/errors.js';
import { push } from '../../../registry/remote/push.js';
import { connectionFlags, progress, remoteOptions, type ConnectionOpts } from './pull.js';

/** `tsbuild push IMAGE [DEST]`: pushes a local image; prints the pushed digest on stdout. */
export function register(cmd: Command, ctx: () => CliContext): void {
  connectionFlags(cmd)
    .argument('<image>', 'local image name or id')
    .argument('[dest]', 'destination reference (default: the image name)')
    .option('-q, --quiet', 'print only the digest')
    .action(async (image: string, dest: string | undefined, o: ConnectionOpts & { quiet?: boolean }) => {
      const c = ctx();
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const record = await store.resolve(image);
      if (!dest && !record.name) throw new UsageError('INVALID_ARGUMENT', `push: ${image} has no name; give a destination reference`);
      const ref = parseReference(dest ?? (record.name || image));
      if (!o.quiet) c.stderr.write(`pushing ${formatReference(ref)}\n`);
      const bar = progress(c, !!o.quiet, 'uploading');
      const opts = { ...(await remoteOptions(c, [ref.registry], o)), ...(bar.onProgress ? { onProgress: bar.onProgress } : {}) };
      const d = await push(ref, { store: store.content, descriptor: record.descriptor }, opts).finally(() => bar.finish());
      if (!o.quiet) c.stderr.write(`digest: ${d.digest}\n`);
      c.stdout.write(`${d.digest}\n`);
    });
}
