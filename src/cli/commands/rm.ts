import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `tsbuild rm [-f] CONTAINER...`: removes state, log, rootfs, cgroup and name. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .option('-f, --force', 'kill (SIGKILL) and remove a running container')
    .option('-v, --volumes', 'remove the anonymous volumes of the container too')
    .action(async (refs: string[], o: { force?: boolean; volumes?: boolean }) => {
      const c = ctx();
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      const { removeContainer } = await import('../../../runtime/container/lifecycle.js');
      let failed: unknown;
      for (const ref of refs) {
        try {
          await removeContainer(c.root, await resolveContainer(c.root, ref), { force: !!o.force, volumes: !!o.volumes });
          c.stdout.write(`${ref}\n`);
        } catch (e) {
          // like docker: go on with the others, fail at the end
          if (failed) c.stderr.write(`tsbuild: ${(failed as Error).message}\n`);
          failed = e;
        }
      }
      if (failed) throw failed;
    });
}
