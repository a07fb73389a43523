import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { TsbuildError, UsageError } from '../../util/errors.js';

/** `tsbuild port CONTAINER [PRIVATE_PORT[/PROTO]]`: published ports as `80/tcp -> 127.0.0.1:8080` (docker port). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<container>', 'container name or id')
    .argument('[port]', 'only this container port (PORT[/tcp|udp]); prints just the host address')
    .action(async (ref: string, port: string | undefined) => {
      const c = ctx();
      const { resolveContainer, readRecord } = await import('../../../runtime/container/records.js');
      const rec = await readRecord(c.root, await resolveContainer(c.root, ref));
      const ports = rec?.ports ?? [];
      if (port === undefined) {
        for (const p of ports) c.stdout.write(`${p.containerPort}/${p.protocol} -> ${p.hostIP ?? '0.0.0.0'}:${p.hostPort}\n`);
        return;
      }
      const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(port);
      if (!m) throw new UsageError('INVALID_ARGUMENT', `invalid port ${JSON.stringify(port)}: expected PORT[/tcp|udp]`);
      const hits = ports.filter((p) => p.containerPort === Number(m[1]) && p.protocol === (m[2] ?? 'tcp'));
      if (!hits.length) throw new TsbuildError('NOT_FOUND', `no public port ${m[1]}/${m[2] ?? 'tcp'} published for container ${rec?.name ?? ref}`);
      for (const p of hits) c.stdout.write(`${p.hostIP ?? '0.0.0.0'}:${p.hostPort}\n`);
    });
}
