import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { familiarName, formatReference, parseReference } from '../../oci/reference.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { ContentError, formatErrorChain } from '../../util/errors.js';

/**
 * The id of a container (running or stopped, not removed) created from image `id`, if any. The
 * runtime's record code is loaded only when the store has containers at all, so `rmi` on a store
 * without containers stays free of runtime modules.
 */
async function containerUsing(root: string, id: string): Promise<string | undefined> {
  const entries = await readdir(join(root, 'containers')).catch(() => [] as string[]);
  if (!entries.some((n) => /^[0-9a-f]{64}$/.test(n))) return undefined;
  const { listIds, readRecord } = await import('../../../runtime/container/records.js');
  for (const cid of await listIds(root)) {
    if ((await readRecord(root, cid))?.imageId === id) return cid;
  }
  return undefined;
}

/**
 * `tsbuild rmi IMAGE... [-f]`: removes names; an image whose last name goes (or that is named
 * by ID) is deleted with the blobs no other image or gc root uses.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<image...>', 'image names or IDs')
    .option('-f, --force', 'remove an image referred to by ID even when it has several names, or used by a container')
    .action(async (images: string[], opts: { force?: boolean }) => {
      const c = ctx();
      const store = await ImageStore.open(c.root, { logger: c.logger });
      let failed = false;
      for (const arg of images) {
        try {
          const rec = await store.resolve(arg);
          const all = await store.recordsFor(rec.id);
          let byName = false;
          try {
            const ref = parseReference(arg);
            byName = !ref.digest && formatReference(ref) === rec.name;
          } catch {
            /* an ID */
          }
          if (byName && all.length > 1) {
            await store.untag(rec.name);
            c.stdout.write(`Untagged: ${familiarName(parseReference(rec.name))}\n`);
            continue;
          }
          if (!byName && all.filter((r) => r.name).length > 1 && !opts.force) {
            throw new ContentError('IN_USE', `unable to delete ${arg} (must be forced): image is referenced in multiple repositories`);
          }
          if (!opts.force) {
            const user = await containerUsing(c.root, rec.id);
            if (user) throw new ContentError('IN_USE', `unable to delete ${arg} (must be forced): image is being used by container ${user.slice(0, 12)}`);
          }
          const blobs = await store.graphDigests(rec.descriptor);
          const removed = await store.removeId(rec.id);
          for (const r of removed) if (r.name) c.stdout.write(`Untagged: ${familiarName(parseReference(r.name))}\n`);
          const gc = await store.gc({ only: blobs });
          c.stdout.write(`Deleted: ${rec.id}\n`);
          c.logger.debug(`rmi ${arg}: removed ${gc.removed.length} blobs`);
        } catch (e) {
          failed = true;
          c.stderr.write(`tsbuild: ${formatErrorChain(e)}\n`);
        }
      }
      if (failed) throw new ExitStatus(1);
    });
}
