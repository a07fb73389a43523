import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DefaultKeychain, authFilePaths, normaliseAuthKey, type KeychainEnv } from '../../../registry/auth/keychain.js';
import { removeLogin, saveLogin } from '../../../registry/auth/login.js';
import { RegistryError } from '../../../registry/transport/errors.js';

let home: string;
let env: NodeJS.ProcessEnv;
const warnings: string[] = [];
const kenv = (): KeychainEnv => ({ env, home, logger: { debug() {}, info() {}, warn: (m) => warnings.push(m) } });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
async function writeJson(path: string, v: unknown): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, JSON.stringify(v));
}

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'tsbuild-keychain-'));
  env = { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' };
  warnings.length = 0;
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('DefaultKeychain', () => {
  it('reads base64 auth and username/password entries from docker config.json', async () => {
    await writeJson(join(home, '.docker', 'config.json'), {
      auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw:with:colons') }, 'reg.example:5000': { username: 'u', password: 'p' }, 'tok.example': { identitytoken: 'rt' } },
    });
    const k = new DefaultKeychain(kenv());
    expect(await k.resolve('docker.io')).toEqual({ username: 'hub', password: 'pw:with:colons' });
    expect(await k.resolve('reg.example:5000')).toEqual({ username: 'u', password: 'p' });
    expect(await k.resolve('tok.example')).toEqual({ identityToken: 'rt' });
    expect(await k.resolve('other.example')).toBeUndefined();
  });

  it('looks in REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, ~/.config/containers, then docker, in that order', async () => {
    env.REGISTRY_AUTH_FILE = join(home, 'custom.json');
    env.XDG_RUNTIME_DIR = join(home, 'run');
    expect(authFilePaths(kenv())).toEqual([
      join(home, 'custom.json'),
      join(home, 'run', 'containers', 'auth.json'),
      join(home, '.config', 'containers', 'auth.json'),
      join(home, '.docker', 'config.json'),
    ]);
    await writeJson(join(home, '.docker', 'config.json'), { auths: { a: { auth: b64('docker:1') }, b: { auth: b64('docker:2') }, c: { auth: b64('docker:3') }, d: { auth: b64('docker:4') } } });
    await writeJson(join(home, '.config', 'containers', 'auth.json'), { auths: { a: { auth: b64('config:1') }, b: { auth: b64('config:2') }, c: { auth: b64('config:3') } } });
    await writeJson(join(home, 'run', 'containers', 'auth.json'), { auths: { a: { auth: b64('run:1') }, b: { auth: b64('run:2') } } });
    await writeJson(join(home, 'custom.json'), { auths: { a: { auth: b64('custom:1') } } });
    const k = new DefaultKeychain(kenv());
    expect(await k.resolve('a')).toEqual({ username: 'custom', password: '1' });
    expect(await k.resolve('b')).toEqual({ username: 'run', password: '2' });
    expect(await k.resolve('c')).toEqual({ username: 'config', password: '3' });
    expect(await k.resolve('d')).toEqual({ username: 'docker', password: '4' });
  });

  it('runs credHelpers and credsStore programs (docker-credential-<name> get)', async () => {
    const bin = join(home, 'bin');
    await mkdir(bin);
    const helper = join(bin, 'docker-credential-fake');
    await writeFile(
      helper,
      '#!/bin/sh\nread url\ncase "$url" in\n  helped.example) echo "{\\"ServerURL\\":\\"$url\\",\\"Username\\":\\"hu\\",\\"Secret\\":\\"hs\\"}";;\n  token.example) echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"idt\\"}";;\n  *) echo "credentials not found in native keychain"; exit 1;;\nesac\n',
    );
    await chmod(helper, 0o755);
    env.PATH = `${bin}:${env.PATH}`;
    await writeJson(join(home, '.docker', 'config.json'), { credsStore: 'fake', credHelpers: { 'broken.example': 'missing' } });
    const k = new DefaultKeychain(kenv());
    expect(await k.resolve('helped.example')).toEqual({ username: 'hu', password: 'hs' });
    expect(await k.resolve('token.example')).toEqual({ identityToken: 'idt' });
    expect(await k.resolve('nothing.example')).toBeUndefined();
    expect(warnings).toEqual([]);
    // a helper that is not installed: a warning, then anonymous
    expect(await k.resolve('broken.example')).toBeUndefined();
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain('docker-credential-missing');
    expect(warnings[0]).toContain('anonymously');
  });

  it('reports a malformed config file with its path', async () => {
    await mkdir(join(home, '.docker'));
    await writeFile(join(home, '.docker', 'config.json'), '{nope');
    const err = await new DefaultKeychain(kenv()).resolve('x').catch((e: unknown) => e as RegistryError);
    expect(err.code).toBe('INVALID_AUTH_CONFIG');
    expect(err.message).toContain(join(home, '.docker', 'config.json'));
  });

  it('normalises auth keys', () => {
    expect(normaliseAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normaliseAuthKey('registry-1.docker.io')).toBe('docker.io');
    expect(normaliseAuthKey('http://Reg.Example:5000/v2/')).toBe('reg.example:5000');
  });
});

describe('login/logout', () => {
  it('writes docker config.json with mode 0600, keeping other keys, and removes entries', async () => {
    await writeJson(join(home, '.docker', 'config.json'), { auths: { 'keep.example': { auth: b64('k:k') } }, credHelpers: { x: 'y' }, psFormat: 'table' });
    const path = await saveLogin('127.0.0.1:5000', 'alice', 'pw', kenv());
    expect(path).toBe(join(home, '.docker', 'config.json'));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(cfg).toEqual({ auths: { 'keep.example': { auth: b64('k:k') }, '127.0.0.1:5000': { auth: b64('alice:pw') } }, credHelpers: { x: 'y' }, psFormat: 'table' });
    expect(await new DefaultKeychain(kenv()).resolve('127.0.0.1:5000')).toEqual({ username: 'alice', password: 'pw' });
    expect(await removeLogin('127.0.0.1:5000', kenv())).toBe(true);
    expect(await removeLogin('127.0.0.1:5000', kenv())).toBe(false);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ auths: { 'keep.example': { auth: b64('k:k') } }, credHelpers: { x: 'y' }, psFormat: 'table' });
  });

  it('stores Docker Hub under the index URL', async () => {
    const path = await saveLogin('docker.io', 'me', 'pw', kenv());
    expect(Object.keys((JSON.parse(await readFile(path, 'utf8')) as { auths: object }).auths)).toEqual(['https://index.docker.io/v1/']);
  });
});
