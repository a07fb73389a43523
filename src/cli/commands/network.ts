import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `tsbuild network create|ls|rm|prune|inspect`: CNI networks under `<root>/networks/`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.description('manage CNI networks (conflists in <root>/networks/)');
  cmd
    .command('create')
    .argument('<name>', 'network name')
    .option('--subnet <cidr>', 'IPv4 subnet (default: the next free 10.88.N.0/24)')
    .description('create a bridge network')
    .action(async (name: string, o: { subnet?: string }) => {
      const { createNetwork } = await import('../../../runtime/network/cni.js');
      await createNetwork(ctx().root, name, o.subnet ? { subnet: o.subnet } : {});
      ctx().stdout.write(`${name}\n`);
    });
  cmd
    .command('ls')
    .option('--format <fmt>', 'table or json', 'table')
    .description('list networks')
    .action(async (o: { format: string }) => {
      const c = ctx();
      const { listNetworks, loadNetwork, DEFAULT_NETWORK } = await import('../../../runtime/network/cni.js');
      await loadNetwork(c.root, DEFAULT_NETWORK);
      const list = await listNetworks(c.root);
      if (o.format === 'json') {
        for (const n of list) c.stdout.write(`${JSON.stringify(n)}\n`);
        return;
      }
      c.stdout.write(`${'NAME'.padEnd(20)}${'BRIDGE'.padEnd(17)}${'SUBNET'.padEnd(20)}CONTAINERS\n`);
      for (const n of list) c.stdout.write(`${n.name.padEnd(20)}${(n.bridge ?? '').padEnd(17)}${(n.subnet ?? '').padEnd(20)}${n.containers.length}\n`);
    });
  cmd
    .command('rm')
    .argument('<names...>', 'network names')
    .description('remove networks no container uses (and their bridges)')
    .action(async (names: string[]) => {
      const { removeNetwork } = await import('../../../runtime/network/cni.js');
      for (const n of names) {
        await removeNetwork(ctx().root, n);
        ctx().stdout.write(`${n}\n`);
      }
    });
  cmd
    .command('prune')
    .option('-f, --force', 'do not prompt (tsbuild never prompts; accepted for docker compatibility)')
    .description('remove every user network no container uses (the default network stays)')
    .action(async () => {
      const c = ctx();
      const { listNetworks, removeNetwork, DEFAULT_NETWORK } = await import('../../../runtime/network/cni.js');
      const gone: string[] = [];
      for (const n of await listNetworks(c.root)) {
        if (n.name === DEFAULT_NETWORK || n.containers.length) continue;
        await removeNetwork(c.root, n.name);
        gone.push(n.name);
      }
      if (gone.length) c.stdout.write(`Deleted Networks:\n${gone.map((n) => `${n}\n`).join('')}`);
    });
  cmd
    .command('inspect')
    .argument('<name>', 'network name')
    .description('print the network conflist')
    .action(async (name: string) => {
      const { loadNetwork } = await import('../../../runtime/network/cni.js');
      ctx().stdout.write(`${JSON.stringify(await loadNetwork(ctx().root, name), null, 2)}\n`);
    });
}
