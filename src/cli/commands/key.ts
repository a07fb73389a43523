import { access, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { generateKeyPair } from '../../sign/keys.js';
import { UsageError } from '../../util/errors.js';
import { readPassword } from './sign.js';

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `tsbuild key generate [--output-key-prefix P]`: a cosign key pair, `P.key`
 * (`ENCRYPTED SIGSTORE PRIVATE KEY`, mode 0600) and `P.pub`; the password comes from
 * $COSIGN_PASSWORD or a terminal prompt.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .command('generate')
    .description('Generate a cosign-compatible ECDSA P-256 key pair')
    .option('--output-key-prefix <prefix>', 'write <prefix>.key and <prefix>.pub', 'cosign')
    .option('-f, --force', 'overwrite existing key files')
    .action(async (o: { outputKeyPrefix: string; force?: boolean }) => {
      const c = ctx();
      const keyPath = `${o.outputKeyPrefix}.key`;
      const pubPath = `${o.outputKeyPrefix}.pub`;
      if (!o.force) {
        for (const p of [keyPath, pubPath]) if (await exists(p)) throw new UsageError('INVALID_ARGUMENT', `${p} already exists (use --force to overwrite)`);
      }
      const password = await readPassword(c, 'Enter password for private key: ', true);
      const pair = generateKeyPair(password);
      await writeFile(keyPath, pair.privateKeyPem, { mode: 0o600 });
      await writeFile(pubPath, pair.publicKeyPem, { mode: 0o644 });
      c.stderr.write(`Private key written to ${keyPath}\nPublic key written to ${pubPath}\n`);
    });
}
