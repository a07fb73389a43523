import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/util/logger.js';
import { nullLogger } from '../../src/util/logger.js';
import { RegistryError } from '../transport/errors.js';
import type { Credential, Keychain } from '../transport/auth.js';

/** The `auths` part of docker's config.json / containers' auth.json. */
export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
}

/** The parts of docker's config.json tsbuild reads and writes (other keys are preserved on write). */
export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** Environment and paths a keychain looks at (injected by tests). */
export interface KeychainEnv {
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
  readonly logger?: Logger;
  /** Directory searched for `docker-credential-<name>` programs before $PATH (tests). */
  readonly helperPath?: string;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(k: KeychainEnv = {}): string {
  const env = k.env ?? process.env;
  const home = k.home ?? env.HOME ?? homedir();
  return join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json');
}

/**
 * The auth files consulted, in order (containers-auth.json(5)): `$REGISTRY_AUTH_FILE`,
 * `${XDG_RUNTIME_DIR}/containers/auth.json`, `~/.config/containers/auth.json`, then docker's
 * config.json. The first file with an entry for the registry wins.
 */
export function authFilePaths(k: KeychainEnv = {}): string[] {
  const env = k.env ?? process.env;
  const home = k.home ?? env.HOME ?? homedir();
  const out: string[] = [];
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  out.push(dockerConfigPath(k));
  return [...new Set(out)];
}

/** Reads a config file; undefined when it does not exist. Throws INVALID_AUTH_CONFIG on bad JSON. */
export async function readConfigFile(path: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new RegistryError('INVALID_AUTH_CONFIG', `reading ${path}`, { cause: e });
  }
  if (!text.trim()) return {};
  try {
    const j = JSON.parse(text) as unknown;
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not a JSON object');
    return j as DockerConfigFile;
  } catch (e) {
    throw new RegistryError('INVALID_AUTH_CONFIG', `parsing ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/**
 * Keys an `auths` map may use for a registry: docker writes `https://index.docker.io/v1/` for
 * Docker Hub and sometimes `https://host/` or `host/v1/` for others.
 */
export function normaliseAuthKey(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z]+:\/\//i, '');
  k = k.replace(/\/.*$/, '');
  if (k === 'index.docker.io' || k === 'registry-1.docker.io' || k === 'registry.hub.docker.com') return 'docker.io';
  return k.toLowerCase();
}

/** The server URL docker uses for a registry in config.json and with credential helpers. */
export function serverUrlFor(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

function entryToCredential(e: AuthEntry, where: string): Credential | undefined {
  if (e.registrytoken) return { registryToken: e.registrytoken };
  let username = e.username;
  let password = e.password;
  if (e.auth) {
    let decoded: string;
    try {
      decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    } catch (err) {
      throw new RegistryError('INVALID_AUTH_CONFIG', `${where}: invalid base64 in "auth"`, { cause: err });
    }
    const i = decoded.indexOf(':');
    if (i < 0) throw new RegistryError('INVALID_AUTH_CONFIG', `${where}: "auth" does not decode to user:password`);
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1);
  }
  if (e.identitytoken) return username ? { identityToken: e.identitytoken, username } : { identityToken: e.identitytoken };
  if (username !== undefined && password !== undefined && (username || password)) return { username, password };
  return undefined;
}

/**
 * Runs `docker-credential-<helper> get` with the server URL on stdin (docker-credential-helpers
 * protocol). Returns undefined when the helper knows no credentials; throws CREDENTIAL_HELPER
 * when the helper program is missing or fails.
 */
export async function credentialFromHelper(helper: string, serverUrl: string, k: KeychainEnv = {}): Promise<Credential | undefined> {
  const env = { ...(k.env ?? process.env) };
  if (k.helperPath) env.PATH = `${k.helperPath}:${env.PATH ?? ''}`;
  const prog = `docker-credential-${helper}`;
  const { code, stdout, stderr, error } = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }>((resolve) => {
    const child = spawn(prog, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', (e) => resolve({ code: null, stdout: out, stderr: err, error: e }));
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
    child.stdin.on('error', () => {});
    child.stdin.end(serverUrl);
  });
  if (error) throw new RegistryError('CREDENTIAL_HELPER', `running ${prog}: ${error.message}`, { cause: error });
  const text = stdout.trim() || stderr.trim();
  if (code !== 0) {
    if (/credentials not found/i.test(text)) return undefined;
    throw new RegistryError('CREDENTIAL_HELPER', `${prog} get ${serverUrl}: exit status ${code}: ${text.slice(0, 200)}`);
  }
  let j: { Username?: unknown; Secret?: unknown };
  try {
    j = JSON.parse(stdout) as typeof j;
  } catch (e) {
    throw new RegistryError('CREDENTIAL_HELPER', `${prog} get ${serverUrl}: output is not JSON`, { cause: e });
  }
  const user = typeof j.Username === 'string' ? j.Username : '';
  const secret = typeof j.Secret === 'string' ? j.Secret : '';
  if (!secret) return undefined;
  // docker-credential-helpers: Username "<token>" marks an identity (refresh) token.
  if (user === '<token>') return { identityToken: secret };
  return { username: user, password: secret };
}

/**
 * The default keychain: containers auth files then docker's config.json (see
 * {@link authFilePaths}); per-registry `credHelpers` then `credsStore` of the file that names
 * them. A missing or failing helper is logged as a warning and the registry is used anonymously.
 */
export class DefaultKeychain implements Keychain {
  readonly #k: KeychainEnv;
  readonly #log: Logger;
  readonly #cache = new Map<string, Promise<Credential | undefined>>();

  constructor(k: KeychainEnv = {}) {
    this.#k = k;
    this.#log = k.logger ?? nullLogger;
  }

  resolve(registry: string): Promise<Credential | undefined> {
    const key = normaliseAuthKey(registry);
    let p = this.#cache.get(key);
    if (!p) {
      p = this.#resolve(key);
      this.#cache.set(key, p);
    }
    return p;
  }

  async #resolve(registry: string): Promise<Credential | undefined> {
    for (const path of authFilePaths(this.#k)) {
      const cfg = await readConfigFile(path);
      if (!cfg) continue;
      const helper = cfg.credHelpers && Object.entries(cfg.credHelpers).find(([k]) => normaliseAuthKey(k) === registry)?.[1];
      if (helper) return this.#helper(helper, registry, path);
      const entry = cfg.auths && Object.entries(cfg.auths).find(([k]) => normaliseAuthKey(k) === registry)?.[1];
      if (entry) {
        const cred = entryToCredential(entry, `${path}: auths["${registry}"]`);
        if (cred) return cred;
      }
      if (cfg.credsStore) {
        const c = await this.#helper(cfg.credsStore, registry, path);
        if (c) return c;
      }
    }
    return undefined;
  }

  async #helper(helper: string, registry: string, path: string): Promise<Credential | undefined> {
    try {
      return await credentialFromHelper(helper, serverUrlFor(registry), this.#k);
    } catch (e) {
      this.#log.warn(`credential helper "${helper}" from ${path} failed for ${registry}; continuing anonymously: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }
}

/** A keychain with fixed credentials per registry (tests, `--creds`). */
export class StaticKeychain implements Keychain {
  readonly #m: Map<string, Credential>;
  constructor(entries: Record<string, Credential>) {
    this.#m = new Map(Object.entries(entries).map(([k, v]) => [normaliseAuthKey(k), v]));
  }
  async resolve(registry: string): Promise<Credential | undefined> {
    return this.#m.get(normaliseAuthKey(registry));
  }
}
