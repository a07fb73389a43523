import { join } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { progressMode, transferProgress, type TransferProgressRenderer } from '../progress.js';
import { formatReference, parseReference, type Reference } from '../../oci/reference.js';
import { parsePlatform } from '../../oci/platform.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { UsageError } from '../../util/errors.js';
import { DefaultKeychain } from '../../../registry/auth/keychain.js';
import { tlsOptionsFor } from '../../../registry/options.js';
import type { RemoteOptions } from '../../../registry/remote/options.js';
import { pullDetailed } from '../../../registry/remote/pull.js';
import type { Credential } from '../../../registry/transport/auth.js';

/** Registry connection flags shared by pull, push, copy and login. */
export interface ConnectionOpts {
  tlsVerify?: string | boolean;
  insecure?: boolean;
  plainHttp?: boolean;
  certDir?: string;
  creds?: string;
}

/** Adds the registry connection flags to a command. */
export function connectionFlags(cmd: Command): Command {
  return cmd
    .option('--tls-verify <bool>', 'verify TLS certificates (false also allows plain HTTP)', 'true')
    .option('--insecure', 'allow plain HTTP when HTTPS does not answer (loopback registries always may)')
    .option('--plain-http', 'use plain HTTP only')
    .option('--cert-dir <dir>', 'directory with CA certificates (*.crt) and a client certificate (*.cert, *.key)')
    .option('--creds <user:password>', 'credentials for the registry (default: auth.json / docker config.json)');
}

/** RemoteOptions for the given registries from the connection flags. */
export async function remoteOptions(ctx: CliContext, registries: readonly string[], o: ConnectionOpts): Promise<RemoteOptions> {
  const tlsVerify = !(o.tlsVerify === false || String(o.tlsVerify).toLowerCase() === 'false');
  const tls = { ca: [] as string[], cert: undefined as string | Buffer | undefined, key: undefined as string | Buffer | undefined };
  for (const r of new Set(registries)) {
    const t = await tlsOptionsFor(r, { tlsVerify, ...(o.certDir ? { certDir: o.certDir } : {}) });
    tls.ca.push(...((t.ca ?? []) as string[]));
    tls.cert ??= t.cert;
    tls.key ??= t.key;
  }
  let credential: Credential | undefined;
  if (o.creds) {
    const i = o.creds.indexOf(':');
    if (i < 0) throw new UsageError('INVALID_ARGUMENT', '--creds: want USER:PASSWORD');
    credential = { username: o.creds.slice(0, i), password: o.creds.slice(i + 1) };
  }
  return {
    keychain: new DefaultKeychain({ logger: ctx.logger }),
    ...(credential ? { credential } : {}),
    logger: ctx.logger,
    insecure: !!o.insecure || !tlsVerify,
    ...(o.plainHttp ? { plainHttp: true } : {}),
    tls: { ...(tls.ca.length ? { ca: tls.ca } : {}), ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}), verify: tlsVerify },
  };
}

/** The transfer progress renderer on stderr for a command (nothing with -q). */
export function progress(ctx: CliContext, quiet: boolean, verb: string): TransferProgressRenderer {
  return transferProgress(ctx.stderr, progressMode(ctx.stderr, quiet), { verb });
}

/** Where interrupted downloads are kept for the next run: `<root>/tmp/partial`. */
export function partialDir(ctx: CliContext): string {
  return join(ctx.root, 'tmp', 'partial');
}

/** The name a pulled image is recorded under (tag kept; digest-only references stay untagged). */
function nameFor(ref: Reference): string | undefined {
  if (!ref.tag) return undefined;
  const { digest: _d, ...rest } = ref;
  void _d;
  return formatReference(rest);
}

/** `tsbuild pull IMAGE`: pulls from a registry into the local store and tags it. */
export function register(cmd: Command, ctx: () => CliContext): void {
  connectionFlags(cmd)
    .argument('<image>', 'image reference, e.g. 127.0.0.1:5000/demo/app:v1')
    .option('--platform <os/arch[/variant]>', 'platform to pull from an index (default: this host)')
    .option('--all-platforms', 'pull every platform of an index (needed to push the index elsewhere)')
    .option('-q, --quiet', 'print only the image reference')
    .action(async (image: string, o: PullFlags) => {
      const c = ctx();
      c.stdout.write(`${await pullImage(c, image, o)}\n`);
    });
}

/** Flags of `tsbuild pull` (also used by `run --pull` and other commands that pull on demand). */
export type PullFlags = ConnectionOpts & { platform?: string; allPlatforms?: boolean; quiet?: boolean };

/** Pulls `image` into the local store and tags it; returns the local name (or the reference). */
export async function pullImage(c: CliContext, image: string, o: PullFlags): Promise<string> {
      const ref = parseReference(image);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      if (!o.quiet) c.stderr.write(`pulling ${formatReference(ref)}\n`);
      const bar = progress(c, !!o.quiet, 'downloading');
      const opts = {
        ...(await remoteOptions(c, [ref.registry], o)),
        partialDir: partialDir(c),
        ...(o.platform ? { platform: parsePlatform(o.platform) } : {}),
        ...(o.allPlatforms ? { allPlatforms: true } : {}),
        ...(bar.onProgress ? { onProgress: bar.onProgress } : {}),
      };
      const res = await pullDetailed(ref, store.content, opts).finally(() => bar.finish());
      const name = nameFor(ref);
      if (name) await store.tag(name, res.descriptor);
      else await store.addUntagged(res.descriptor);
      if (!o.quiet) c.stderr.write(`digest: ${res.descriptor.digest}\n`);
      return name ?? formatReference(ref);
}
