import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RegistryError } from '../transport/errors.js';
import { dockerConfigPath, normaliseAuthKey, readConfigFile, serverUrlFor, type KeychainEnv } from './keychain.js';

async function writeConfig(path: string, cfg: object): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(cfg, null, '\t')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new RegistryError('INVALID_AUTH_CONFIG', `writing ${path}`, { cause: e });
  }
}

/**
 * Stores `username:password` for a registry in docker's config.json (mode 0600, written
 * atomically, other keys preserved). Callers verify the credentials first (see remote/login).
 */
export async function saveLogin(registry: string, username: string, password: string, k: KeychainEnv = {}): Promise<string> {
  const path = dockerConfigPath(k);
  const cfg = (await readConfigFile(path)) ?? {};
  const auths = { ...(cfg.auths ?? {}) };
  const reg = normaliseAuthKey(registry);
  for (const key of Object.keys(auths)) if (normaliseAuthKey(key) === reg) delete auths[key];
  auths[serverUrlFor(reg)] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  await writeConfig(path, { ...cfg, auths });
  return path;
}

/** Removes a registry's entry from docker's config.json; returns false when there was none. */
export async function removeLogin(registry: string, k: KeychainEnv = {}): Promise<boolean> {
  const path = dockerConfigPath(k);
  const cfg = await readConfigFile(path);
  if (!cfg?.auths) return false;
  const reg = normaliseAuthKey(registry);
  const auths = { ...cfg.auths };
  let found = false;
  for (const key of Object.keys(auths)) {
    if (normaliseAuthKey(key) === reg) {
      delete auths[key];
      found = true;
    }
  }
  if (found) await writeConfig(path, { ...cfg, auths });
  return found;
}
