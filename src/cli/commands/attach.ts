import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { UsageError } from '../../util/errors.js';

/**
 * docker's --detach-keys: comma-separated keys, each `ctrl-<a-z@[\]^_>` or one character
 * (`ctrl-p,ctrl-q` is the default). Returns the byte sequence.
 */
export function parseDetachKeys(s: string): Buffer {
  const out: number[] = [];
  for (const k of s.split(',')) {
    const m = /^ctrl-([a-z@[\\\]^_])$/i.exec(k);
    if (m) out.push(m[1]!.toUpperCase().charCodeAt(0) - 64);
    else if (k.length === 1) out.push(k.charCodeAt(0));
    else throw new UsageError('INVALID_ARGUMENT', `invalid detach key ${JSON.stringify(k)}: want ctrl-<a-z@[\\]^_> or a single character`);
  }
  return Buffer.from(out);
}

/** `tsbuild attach [--no-stdin] [--sig-proxy=false] [--detach-keys KEYS] CONTAINER`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<container>', 'container name or id (prefix)')
    .option('--no-stdin', 'do not attach stdin')
    .option('--sig-proxy <bool>', 'pass SIGINT/SIGTERM/SIGHUP on to the container (not with -t)', 'true')
    .option('--detach-keys <keys>', 'key sequence that detaches and leaves the container running', 'ctrl-p,ctrl-q')
    .action(async (ref: string, o: { stdin: boolean; sigProxy: string; detachKeys: string }) => {
      const c = ctx();
      if (o.sigProxy !== 'true' && o.sigProxy !== 'false') throw new UsageError('INVALID_ARGUMENT', `--sig-proxy: want true or false, got ${o.sigProxy}`);
      const detachKeys = parseDetachKeys(o.detachKeys);
      const { resolveContainer, containerInfo, recordPaths } = await import('../../../runtime/container/records.js');
      const { attachMonitor } = await import('../../../runtime/monitor/control.js');
      const { RuntimeError } = await import('../../../runtime/errors.js');
      const id = await resolveContainer(c.root, ref);
      const info = await containerInfo(c.root, id);
      if (!info || (info.status.status !== 'running' && info.status.status !== 'paused')) {
        throw new RuntimeError('INVALID_STATE', `cannot attach to container ${ref}: it is ${info?.status.status ?? 'gone'}, not running`);
      }
      if (!info.record.detached) throw new RuntimeError('INVALID_STATE', `cannot attach to container ${ref}: it was not started with -d`);
      const tty = info.record.tty;
      const stdin = o.stdin && info.record.openStdin ? process.stdin : undefined;
      const raw = tty && !!stdin && process.stdin.isTTY;
      if (raw) process.stdin.setRawMode(true);
      // docker's --sig-proxy: our signals go to the container (a terminal sends ^C through the pty instead)
      const sigs: NodeJS.Signals[] = o.sigProxy === 'true' && !tty ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : [];
      const onSignal = (s: NodeJS.Signals) => {
        void import('../../../runtime/container/lifecycle.js').then((l) => l.killContainer(c.root, id, s)).catch(() => undefined);
      };
      for (const s of sigs) process.on(s, onSignal);
      try {
        const r = await attachMonitor(recordPaths(c.root, id).dir, { ...(stdin ? { stdin } : {}), stdout: c.stdout, stderr: c.stderr, detachKeys });
        if (r.detached) return;
        if (r.exitCode !== undefined && r.exitCode !== 0) throw new ExitStatus(r.exitCode);
      } finally {
        if (raw) process.stdin.setRawMode(false);
        for (const s of sigs) process.off(s, onSignal);
        // an open stdin (a pipe, a terminal) would keep this process alive after a detach
        if (stdin) process.stdin.destroy();
      }
    });
}
