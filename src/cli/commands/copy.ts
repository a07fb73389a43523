import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { parsePlatform } from '../../oci/platform.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { copy, parseTransport, type CopyEndpoint } from '../../../registry/copy.js';
import { connectionFlags, partialDir, progress, remoteOptions, type ConnectionOpts } from './pull.js';

/** `tsbuild copy SRC DST`: copies between `docker://REF`, `oci:DIR[:TAG]` and local image names. */
export function register(cmd: Command, ctx: () => CliContext): void {
  connectionFlags(cmd)
    .argument('<src>', 'docker://REF, oci:DIR[:TAG] or a local image name')
    .argument('<dst>', 'docker://REF, oci:DIR[:TAG] or a local image name')
    .option('--platform <os/arch[/variant]>', 'platform to take from an index when pulling')
    .option('-q, --quiet', 'print only the digest')
    .action(async (srcArg: string, dstArg: string, o: ConnectionOpts & { platform?: string; quiet?: boolean }) => {
      const c = ctx();
      let store: ImageStore | undefined;
      const images = async (): Promise<ImageStore> => (store ??= await ImageStore.open(c.root, { logger: c.logger }));
      let src = parseTransport(srcArg);
      if (!src) {
        const s = await images();
        const rec = await s.resolve(srcArg);
        src = { kind: 'store', store: s.content, descriptor: rec.descriptor };
      }
      const parsedDst = parseTransport(dstArg);
      const dst: CopyEndpoint = parsedDst ?? { kind: 'store', store: (await images()).content };
      const registries = [src, dst].flatMap((e) => (e.kind === 'docker' ? [e.ref.registry] : []));
      const bar = progress(c, !!o.quiet, 'copying');
      const opts = {
        ...(await remoteOptions(c, registries, o)),
        ...(dst.kind === 'store' ? { partialDir: partialDir(c) } : {}),
        ...(o.platform ? { platform: parsePlatform(o.platform) } : {}),
        ...(bar.onProgress ? { onProgress: bar.onProgress } : {}),
      };
      const d = await copy(src, dst, opts).finally(() => bar.finish());
      if (!parsedDst) await (await images()).tag(dstArg, d);
      c.stdout.write(`${d.digest}\n`);
    });
}
