import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsOptions } from './transport/fetch.js';

/** Registry connection flags as the CLI takes them (skopeo/podman style). */
export interface ConnectionFlags {
  /** `--tls-verify=false` turns certificate checks off (and allows plain HTTP, like podman). */
  readonly tlsVerify?: boolean;
  /** `--insecure`: allow plain HTTP (HTTPS is tried first). */
  readonly insecure?: boolean;
  /** `--plain-http`: only plain HTTP. */
  readonly plainHttp?: boolean;
  /** `--cert-dir DIR`: `*.crt` are CA certificates, `*.cert` + `*.key` a client certificate. */
  readonly certDir?: string;
}

/** Directories searched for `<host>/` certificate folders when no `--cert-dir` is given. */
export const DEFAULT_CERT_ROOTS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];

/**
 * TLS options for `registry` from a cert directory (docker/containers `certs.d` layout):
 * `--cert-dir` when given, else `/etc/containers/certs.d/<host>` or `/etc/docker/certs.d/<host>`.
 */
export async function tlsOptionsFor(registry: string, flags: ConnectionFlags, roots: readonly string[] = DEFAULT_CERT_ROOTS): Promise<TlsOptions> {
  const dirs = flags.certDir ? [flags.certDir] : roots.map((r) => join(r, registry));
  const ca: string[] = [];
  let cert: string | undefined;
  let key: string | undefined;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (n.endsWith('.crt')) ca.push(await readFile(join(dir, n), 'utf8'));
      else if (n.endsWith('.cert') && !cert) {
        const k = join(dir, `${n.slice(0, -5)}.key`);
        cert = await readFile(join(dir, n), 'utf8');
        key = await readFile(k, 'utf8');
      }
    }
    if (ca.length || cert) break;
  }
  return {
    ...(ca.length ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(flags.tlsVerify === false ? { verify: false } : {}),
  };
}
