import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { normaliseAuthKey } from '../../../registry/auth/keychain.js';
import { saveLogin } from '../../../registry/auth/login.js';
import { verifyLogin } from '../../../registry/auth/verify.js';
import { connectionFlags, remoteOptions, type ConnectionOpts } from './pull.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** `tsbuild login`: checks credentials against the registry and stores them in docker's config.json. */
export function register(cmd: Command, ctx: () => CliContext): void {
  connectionFlags(cmd)
    .argument('<registry>', 'registry host[:port]')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (registry: string, o: ConnectionOpts & { username?: string; password?: string; passwordStdin?: boolean }) => {
      const c = ctx();
      if (!o.username) throw new UsageError('INVALID_ARGUMENT', 'login: --username is required');
      if (o.password !== undefined && o.passwordStdin) throw new UsageError('INVALID_ARGUMENT', 'login: --password and --password-stdin are mutually exclusive');
      const password = o.passwordStdin ? await readStdin() : o.password;
      if (!password) throw new UsageError('INVALID_ARGUMENT', 'login: a password is required (--password-stdin)');
      const host = normaliseAuthKey(registry);
      const opts = await remoteOptions(c, [host], o);
      await verifyLogin(host, { username: o.username, password }, opts);
      const path = await saveLogin(host, o.username, password);
      c.logger.debug(`credentials stored in ${path}`);
      c.stdout.write('Login Succeeded\n');
    });
}
