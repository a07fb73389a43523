import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { parsePlatform } from '../../oci/platform.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { importRootfs } from '../../oci/store/import.js';

/**
 * `tsbuild import ROOTFS.tar|DIR [NAME] [--change 'CMD ...']... [-m MSG]`: a root filesystem
 * becomes a single-layer image (like `docker import`); prints the image ID.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<source>', 'rootfs tar (plain, gzip or zstd) or directory')
    .argument('[name]', 'name to give the image')
    .option('-c, --change <instruction>', 'Dockerfile instruction to apply: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('-m, --message <text>', 'history comment')
    .option('--platform <os/arch[/variant]>', 'platform to record in the config (default: host)')
    .action(async (source: string, name: string | undefined, opts: { change: string[]; message?: string; platform?: string }) => {
      const c = ctx();
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const rec = await store.withLease(async () => {
        const desc = await importRootfs(store, source, {
          changes: opts.change,
          ...(opts.message !== undefined ? { message: opts.message } : {}),
          ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
        });
        if (name) await store.tag(name, desc);
        return name ? store.resolve(name) : store.addUntagged(desc);
      });
      c.stdout.write(`${rec.id}\n`);
    });
}
