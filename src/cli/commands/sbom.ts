import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { sbomDocument, scanImage, type SbomFormat } from '../../sign/sbom/index.js';
import { UsageError } from '../../util/errors.js';

/**
 * `tsbuild sbom IMAGE [--format spdx-json|cyclonedx-json] [--output FILE]`: an SBOM of a local image
 * from its own package databases (dpkg, apk) and os-release, streamed from the store's layers.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<image>', 'local image name or id')
    .option('--format <format>', 'spdx-json or cyclonedx-json', 'spdx-json')
    .option('-o, --output <file>', 'write the document here instead of stdout')
    .action(async (image: string, o: { format: string; output?: string }) => {
      const c = ctx();
      if (o.format !== 'spdx-json' && o.format !== 'cyclonedx-json') throw new UsageError('INVALID_ARGUMENT', `--format ${o.format}: want spdx-json or cyclonedx-json`);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const { record, image: img } = await store.imageFor(image);
      const inventory = await scanImage(img);
      const epoch = process.env['SOURCE_DATE_EPOCH'];
      const created = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
      const doc = sbomDocument(o.format as SbomFormat, inventory, { name: record.name || image, digest: await img.digest(), created });
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (o.output) await writeFile(o.output, text);
      else c.stdout.write(text);
      c.stderr.write(`${inventory.packages.length} packages${inventory.os ? ` (${inventory.os.id} ${inventory.os.versionId ?? ''})` : ''}\n`);
    });
}
