import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { writeArchive } from '../../oci/archive/write.js';
import { parsePlatform } from '../../oci/platform.js';
import { formatReference, parseReference } from '../../oci/reference.js';
import { ImageStore } from '../../oci/store/image-store.js';
import type { LayoutWriteEntry } from '../../oci/layout/layout.js';
import { UsageError } from '../../util/errors.js';

/**
 * `tsbuild save IMAGE... -o FILE [--format docker|oci]`: writes a docker-archive (Docker 25+
 * layout: OCI layout + manifest.json, loadable by docker, podman and skopeo) or an OCI archive.
 * The file appears only when complete.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<image...>', 'image names or IDs')
    .option('-o, --output <file>', 'archive file to write (default: stdout when it is not a terminal)')
    .option('--format <fmt>', 'docker or oci', 'docker')
    .option('--platform <os/arch[/variant]>', 'for multi-platform images: which manifest manifest.json lists')
    .action(async (images: string[], opts: { output?: string; format: string; platform?: string }) => {
      const c = ctx();
      if (opts.format !== 'docker' && opts.format !== 'oci') throw new UsageError('INVALID_ARGUMENT', `--format: want docker or oci, got ${opts.format}`);
      if (!opts.output && c.stdout.isTTY) throw new UsageError('INVALID_ARGUMENT', 'refusing to write an archive to a terminal: use -o FILE');
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const entries: LayoutWriteEntry[] = [];
      for (const arg of images) {
        const rec = await store.resolve(arg);
        let names: string[] = [];
        try {
          const ref = parseReference(arg);
          if (!ref.digest && formatReference(ref) === rec.name) names = [rec.name];
        } catch {
          /* by ID: no name, like docker save <id> */
        }
        const same = entries.find((e) => e.descriptor.digest === rec.descriptor.digest);
        if (same) (same.names as string[]).push(...names.filter((n) => !same.names?.includes(n)));
        else entries.push({ descriptor: rec.descriptor, names });
      }
      const tar = writeArchive(store.content, entries, { format: opts.format, ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}) });
      if (!opts.output || opts.output === '-') {
        await pipeline(tar, c.stdout);
        return;
      }
      const tmp = `${opts.output}.tmp-${process.pid}`;
      try {
        await pipeline(tar, createWriteStream(tmp, { flags: 'wx' }));
        await rename(tmp, opts.output);
      } catch (e) {
        await unlink(tmp).catch(() => {});
        throw e;
      }
    });
}
