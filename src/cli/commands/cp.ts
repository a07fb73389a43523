import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';

/** `CONTAINER:PATH` → its parts; a host path (or `-`) → undefined. As docker, a path with a `/` before the first `:` is local. */
export function splitCopyArg(arg: string): { container: string; path: string } | undefined {
  const i = arg.indexOf(':');
  if (i <= 0 || arg.slice(0, i).includes('/')) return undefined;
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

/**
 * `tsbuild cp [-a] [-L] CONTAINER:SRC DEST|-` and `tsbuild cp [-a] [-L] SRC|- CONTAINER:DEST`:
 * docker cp's path rules; `-` streams a tar on stdout (out) or reads one from stdin (in).
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<src>', 'CONTAINER:SRC_PATH, a host path, or - (a tar stream on stdin)')
    .argument('<dest>', 'CONTAINER:DEST_PATH, a host path, or - (a tar stream on stdout)')
    .option('-a, --archive', 'keep uid/gid of the source (default: root in the container, you on the host)')
    .option('-L, --follow-link', 'follow a symlink that is SRC_PATH itself')
    .option('-q, --quiet', 'accepted for docker compatibility (nothing is printed anyway)')
    .action(async (src: string, dest: string, o: { archive?: boolean; followLink?: boolean }) => {
      const c = ctx();
      const from = splitCopyArg(src);
      const to = splitCopyArg(dest);
      if (from && to) throw new UsageError('INVALID_ARGUMENT', 'copying between containers is not supported');
      if (!from && !to) throw new UsageError('INVALID_ARGUMENT', 'must specify at least one container source: CONTAINER:PATH');
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      const { copyFromContainer, copyToContainer } = await import('../../../runtime/volumes/cp.js');
      const opts = { archive: !!o.archive, followLink: !!o.followLink };
      if (from) {
        const id = await resolveContainer(c.root, from.container);
        await copyFromContainer(c.root, id, from.path, dest === '-' ? c.stdout : dest, opts);
        return;
      }
      const id = await resolveContainer(c.root, to!.container);
      await copyToContainer(c.root, id, src === '-' ? process.stdin : src, to!.path, opts);
    });
}
