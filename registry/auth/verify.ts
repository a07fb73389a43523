import type { Credential } from '../transport/auth.js';
import { RegistryClient, type TransportOptions } from '../transport/client.js';
import { errorFromResponse } from '../transport/fetch.js';

/**
 * Checks credentials against a registry the way `docker login` does: `GET /v2/` with them
 * (for a token registry this fetches a token, which fails on a bad password). Throws
 * RegistryError UNAUTHORIZED naming the registry and the status.
 */
export async function verifyLogin(registry: string, credential: Credential, opts: TransportOptions = {}): Promise<void> {
  const client = new RegistryClient(registry, { ...opts, credential });
  try {
    const url = new URL('/v2/', await client.baseUrl());
    const req = { method: 'GET' as const, url };
    const res = await client.fetch(req, opts.signal);
    if (res.status !== 200) throw await errorFromResponse(res, req, `logging in to ${registry}`);
    await res.discard();
  } finally {
    await client.close();
  }
}
