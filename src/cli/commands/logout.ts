import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { normaliseAuthKey } from '../../../registry/auth/keychain.js';
import { removeLogin } from '../../../registry/auth/login.js';

/** `tsbuild logout REGISTRY`: removes stored credentials from docker's config.json. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.argument('<registry>', 'registry host[:port]').action(async (registry: string) => {
    const c = ctx();
    const host = normaliseAuthKey(registry);
    const removed = await removeLogin(host);
    c.stdout.write(removed ? `Removed login credentials for ${host}\n` : `Not logged in to ${host}\n`);
  });
}
