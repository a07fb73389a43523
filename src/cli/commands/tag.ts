import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ImageStore } from '../../oci/store/image-store.js';

/** `tsbuild tag SOURCE TARGET`: gives the image SOURCE (name or ID) the name TARGET. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<source>', 'image name or ID')
    .argument('<target>', 'new name')
    .action(async (source: string, target: string) => {
      const c = ctx();
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const rec = await store.resolve(source);
      await store.tag(target, rec.descriptor);
    });
}
