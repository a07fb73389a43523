import { readFile, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../../src/oci/reference.js';
import { StaticKeychain } from '../../../registry/auth/keychain.js';
import { pull } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { remoteHead } from '../../../registry/remote/image.js';
import { RegistryError } from '../../../registry/transport/errors.js';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { needTool } from '../../helpers/capabilities.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const why = registrySkipReason() ?? needTool('htpasswd') ?? needTool('openssl');
if (why) console.warn(`skip: ${why}`);

let img: RandomImage;
const dirs: string[] = [];
const tempStore = async (): Promise<FileContentStore> => {
  const d = await mkdtemp(join(tmpdir(), 'tsbuild-store-'));
  dirs.push(d);
  return new FileContentStore(d);
};
beforeAll(async () => {
  if (!why) img = await randomImage({ layers: 2, layerBytes: 20_000 });
});
afterAll(async () => {
  await img?.cleanup();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(!!why)('htpasswd basic auth', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: [{ username: 'alice', password: 'wonderland' }] });
  });
  afterAll(async () => reg?.stop());

  it('pushes and pulls with the right password', async () => {
    const keychain = new StaticKeychain({ [reg.host]: { username: 'alice', password: 'wonderland' } });
    const ref = parseReference(`${reg.host}/secure/app:v1`);
    const d = await push(ref, { store: img.store, descriptor: img.manifest }, { keychain });
    expect(d.digest).toBe(img.manifest.digest);
    expect((await pull(ref, await tempStore(), { keychain })).digest).toBe(img.manifest.digest);
  });

  it('fails with UNAUTHORIZED naming the reference and the status for a bad password', async () => {
    const keychain = new StaticKeychain({ [reg.host]: { username: 'alice', password: 'wrong' } });
    const ref = parseReference(`${reg.host}/secure/app:v1`);
    const err = await pull(ref, await tempStore(), { keychain }).catch((e: unknown) => e as RegistryError);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.status).toBe(401);
    expect(err.message).toMatch(new RegExp(`^pulling ${reg.host}/secure/app:v1: .*\\(401 UNAUTHORIZED\\)$`));
  });

  it('fails anonymously with UNAUTHORIZED', async () => {
    const err = await remoteHead(parseReference(`${reg.host}/secure/app:v1`)).catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.status).toBe(401);
  });
});

describe.skipIf(!!why)('token auth (distribution auth.token with a test issuer)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({
      auth: 'token',
      anonymousPull: true,
      users: [
        { username: 'alice', password: 'wonderland' },
        { username: 'bob', password: 'builder', push: ['bob/only'] },
      ],
    });
  });
  afterAll(async () => reg?.stop());

  it('asks for pull,push scopes when pushing and pull when pulling', async () => {
    const keychain = new StaticKeychain({ [reg.host]: { username: 'alice', password: 'wonderland' } });
    const ref = parseReference(`${reg.host}/tok/app:v1`);
    reg.tokenRequests.length = 0;
    const d = await push(ref, { store: img.store, descriptor: img.manifest }, { keychain });
    expect(d.digest).toBe(img.manifest.digest);
    expect(reg.tokenRequests.length).toBeGreaterThan(0);
    for (const t of reg.tokenRequests) {
      expect(t.account).toBe('alice');
      expect(t.service).toBe('tsbuild-test-registry');
      expect(t.scopes).toEqual(['repository:tok/app:pull,push']);
    }
    // one token, reused for every request of the push
    expect(reg.tokenRequests.length).toBe(1);

    reg.tokenRequests.length = 0;
    const store = await tempStore();
    expect((await pull(ref, store)).digest).toBe(img.manifest.digest);
    expect(reg.tokenRequests.map((t) => [t.account, t.scopes])).toEqual([[undefined, ['repository:tok/app:pull']]]);
  });

  it('adds the source repository scope for cross-repository mounts', async () => {
    const keychain = new StaticKeychain({ [reg.host]: { username: 'alice', password: 'wonderland' } });
    reg.tokenRequests.length = 0;
    const d = await push(parseReference(`${reg.host}/tok/mounted:v1`), { store: img.store, descriptor: img.manifest }, { keychain, mountFrom: ['tok/app'] });
    expect(d.digest).toBe(img.manifest.digest);
    expect(reg.tokenRequests.some((t) => t.scopes.includes('repository:tok/app:pull') && t.scopes.includes('repository:tok/mounted:pull,push'))).toBe(true);
  });

  it('reports DENIED/UNAUTHORIZED when the token lacks push', async () => {
    const keychain = new StaticKeychain({ [reg.host]: { username: 'bob', password: 'builder' } });
    const err = await push(parseReference(`${reg.host}/tok/not-bobs:v1`), { store: img.store, descriptor: img.manifest }, { keychain }).catch((e: unknown) => e as RegistryError);
    expect(err).toBeInstanceOf(RegistryError);
    expect(['UNAUTHORIZED', 'DENIED']).toContain(err.code);
    expect(err.message).toContain(`pushing ${reg.host}/tok/not-bobs:v1`);
    // bob may push to his own repository
    const ok = await push(parseReference(`${reg.host}/bob/only:v1`), { store: img.store, descriptor: img.manifest }, { keychain });
    expect(ok.digest).toBe(img.manifest.digest);
  });

  it('fails at the token service with UNAUTHORIZED for a bad password', async () => {
    const keychain = new StaticKeychain({ [reg.host]: { username: 'alice', password: 'nope' } });
    const err = await push(parseReference(`${reg.host}/tok/app:v2`), { store: img.store, descriptor: img.manifest }, { keychain }).catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.status).toBe(401);
    expect(err.message).toContain(`authenticating to ${reg.host} as alice: invalid username or password (401 UNAUTHORIZED)`);
  });

  it('works with RS256 tokens too', async () => {
    const rs = await startRegistry({ auth: 'token', tokenAlg: 'RS256', users: [{ username: 'alice', password: 'wonderland' }] });
    try {
      const keychain = new StaticKeychain({ [rs.host]: { username: 'alice', password: 'wonderland' } });
      const d = await push(parseReference(`${rs.host}/rs/app:v1`), { store: img.store, descriptor: img.manifest }, { keychain });
      expect(d.digest).toBe(img.manifest.digest);
    } finally {
      await rs.stop();
    }
  });
});

describe.skipIf(!!why)('TLS with a private CA', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true });
  });
  afterAll(async () => reg?.stop());

  it('pushes and pulls over https when given the CA', async () => {
    const ca = await readFile(join(reg.certDir!, 'ca.crt'), 'utf8');
    const ref = parseReference(`${reg.host}/tls/app:v1`);
    const d = await push(ref, { store: img.store, descriptor: img.manifest }, { tls: { ca: [ca] } });
    expect(d.digest).toBe(img.manifest.digest);
    expect((await pull(ref, await tempStore(), { tls: { ca: [ca] } })).digest).toBe(img.manifest.digest);
  });

  it('refuses the certificate without the CA and does not fall back to plain http', async () => {
    const err = await remoteHead(parseReference(`${reg.host}/tls/app:v1`), { retry: { attempts: 1 } }).catch((e: unknown) => e as RegistryError);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code).toBe('NETWORK');
    expect(err.message).toMatch(/certificate/);
  });

  it('accepts any certificate with verification off', async () => {
    const d = await remoteHead(parseReference(`${reg.host}/tls/app:v1`), { tls: { verify: false } });
    expect(d.digest).toBe(img.manifest.digest);
  });
});
