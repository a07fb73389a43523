import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { ExitStatus } from '../exit.js';

/**
 * `tsbuild start [-a] [-i] CONTAINER...`: starts stopped containers again (same id, name,
 * rootfs, log, volumes, network), each under a new monitor. A running one is left alone.
 * With -a (one container): prints its output from this start on and exits with its status;
 * -i forwards stdin too (a container created with -i).
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<containers...>', 'container names or ids')
    .option('-a, --attach', 'print the container\'s output until it exits, and exit with its status')
    .option('-i, --interactive', 'attach the container\'s stdin (a container created with -i)')
    .action(async (refs: string[], o: { attach?: boolean; interactive?: boolean }) => {
      const c = ctx();
      if ((o.attach || o.interactive) && refs.length > 1) throw new UsageError('INVALID_ARGUMENT', 'you cannot start and attach multiple containers at once');
      const { resolveContainer, containerInfo, recordPaths } = await import('../../../runtime/container/records.js');
      const { startContainer } = await import('../../../runtime/monitor/start-container.js');
      if (!o.attach && !o.interactive) {
        let failed: unknown;
        for (const ref of refs) {
          try {
            await startContainer(c.root, await resolveContainer(c.root, ref));
            c.stdout.write(`${ref}\n`);
          } catch (e) {
            // like docker: go on with the others, fail at the end
            if (failed) c.stderr.write(`tsbuild: ${(failed as Error).message}\n`);
            failed = e;
          }
        }
        if (failed) throw failed;
        return;
      }
      const id = await resolveContainer(c.root, refs[0]!);
      const { readLog } = await import('../../../runtime/monitor/json-log.js');
      const { stat } = await import('node:fs/promises');
      const { setTimeout: sleep } = await import('node:timers/promises');
      const path = recordPaths(c.root, id).log;
      // the output of this start: what the log gains from now on (the monitor appends to it)
      let end = await stat(path).then((s) => s.size, () => 0);
      await startContainer(c.root, id);
      let stdinDone: Promise<unknown> | undefined;
      if (o.interactive) {
        const { attachMonitor } = await import('../../../runtime/monitor/control.js');
        const { Writable } = await import('node:stream');
        const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
        stdinDone = attachMonitor(recordPaths(c.root, id).dir, { stdin: process.stdin, stdout: sink(), stderr: sink() }).catch(() => undefined);
      }
      for (;;) {
        const info = await containerInfo(c.root, id);
        const done = !info || info.status.status === 'exited';
        const size = await stat(path).then((s) => s.size, () => 0);
        if (size < end) end = 0; // rotated: the new file starts from 0
        const next = await readLog(path, end);
        for (const e of next.entries) (e.stream === 'stderr' ? c.stderr : c.stdout).write(e.log);
        end = next.end;
        if (done) {
          if (stdinDone) process.stdin.pause();
          const code = info?.status.exitCode ?? 0;
          if (code !== 0) throw new ExitStatus(code);
          return;
        }
        await sleep(100);
      }
    });
}
