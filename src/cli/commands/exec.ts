import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { TsbuildError } from '../../util/errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `tsbuild exec [-i] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  (cmd.parent as Command | null)?.enablePositionalOptions();
  cmd
    .passThroughOptions()
    .argument('<container>', 'container name or id')
    .argument('<command...>', 'command and arguments')
    .option('-i, --interactive', 'pass stdin to the process')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('-u, --user <user[:group]>', 'user name or uid, optionally with group name or gid')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .action(async (ref: string, command: string[], o: { interactive?: boolean; tty?: boolean; env?: string[]; user?: string; workdir?: string }) => {
      const c = ctx();
      const { resolveContainer } = await import('../../../runtime/container/records.js');
      const { execContainer } = await import('../../../runtime/container/lifecycle.js');
      const { resolveEnv } = await import('./run.js');
      // a terminal process gets our keystrokes raw; the pty in the container does the line editing
      const raw = !!o.tty && !!o.interactive && process.stdin.isTTY && c.stdout.isTTY;
      if (raw) process.stdin.setRawMode(true);
      try {
        const r = await execContainer(c.root, await resolveContainer(c.root, ref), {
          args: command, env: resolveEnv(o.env ?? []), ...(o.tty ? { terminal: true } : {}), ...(o.user !== undefined ? { user: o.user } : {}), ...(o.workdir ? { cwd: o.workdir } : {}),
          io: { stdin: o.interactive ? 'inherit' : 'null', stdout: 'inherit', stderr: 'inherit' },
        });
        const { exitCodeOf } = await import('../../../runtime/container/records.js');
        const code = exitCodeOf(r);
        if (code !== 0) throw new ExitStatus(code);
      } catch (e) {
        // docker's statuses: 126 not executable, 127 not found, 125 other failures
        if (e instanceof TsbuildError && e.code === 'EXEC_FAILED') (e as { exitCode?: number }).exitCode = (e as { errno?: string }).errno === 'ENOENT' ? 127 : 126;
        else if (e instanceof TsbuildError && (e as { exitCode?: number }).exitCode === undefined) (e as { exitCode?: number }).exitCode = 125;
        throw e;
      } finally {
        if (raw) process.stdin.setRawMode(false);
      }
    });
}
