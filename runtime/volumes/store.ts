/**
 * Named and anonymous volumes, docker's `local` driver layout: `<store root>/volumes/<name>/_data`
 * is the directory containers mount, `<store root>/volumes/<name>/volume.json` its record. A
 * volume is in use while any container record (running or stopped, until `rm`) lists it in
 * its mounts.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { containerInfo, listIds, readRecord } from '../container/records.js';
import { VolumeError } from './errors.js';

/** Label docker (23+) puts on the volumes it creates for `-v /ctr` and the image's VOLUMEs. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

/** volume.json, in docker's `volume inspect` shape. */
export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  /** The host directory containers mount. */
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
}

/** Who uses a volume. */
export interface VolumeUser { id: string; name: string; running: boolean }

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** `<root>/volumes`. */
export function volumesDir(root: string): string {
  return join(root, 'volumes');
}

function volumeDir(root: string, name: string): string {
  return join(volumesDir(root), name);
}

/** Throws INVALID_NAME with docker's wording unless `name` is a valid local volume name. */
export function checkVolumeName(name: string): void {
  if (!NAME.test(name)) {
    throw new VolumeError('INVALID_NAME', `create ${name}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; if you intended to pass a host directory, use an absolute path`);
  }
}

/** Reads a volume's record; undefined when there is no such volume (or it is half-made). */
export async function readVolume(root: string, name: string): Promise<VolumeRecord | undefined> {
  if (!NAME.test(name)) return undefined;
  try {
    return JSON.parse(await fsp.readFile(join(volumeDir(root, name), 'volume.json'), 'utf8')) as VolumeRecord;
  } catch {
    return undefined;
  }
}

/** The record of volume `name`; VOLUME_NOT_FOUND when it does not exist. */
export async function inspectVolume(root: string, name: string): Promise<VolumeRecord> {
  const v = await readVolume(root, name);
  if (!v) throw new VolumeError('VOLUME_NOT_FOUND', `no such volume: ${name}`);
  return v;
}

/**
 * Creates a volume (docker volume create): a random 64-hex name when none is given. Creating
 * one that exists returns the existing record, as docker does (labels are not changed).
 */
export async function createVolume(root: string, name?: string, labels: Record<string, string> = {}): Promise<VolumeRecord> {
  const n = name ?? randomBytes(32).toString('hex');
  checkVolumeName(n);
  const dir = volumeDir(root, n);
  await fsp.mkdir(volumesDir(root), { recursive: true, mode: 0o701 });
  try {
    await fsp.mkdir(dir, { mode: 0o701 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new VolumeError('IO', `creating volume ${n}`, { cause: e });
    const existing = await readVolume(root, n);
    if (existing) return existing;
    // a creator that died before writing its record: finish the job
  }
  const rec: VolumeRecord = {
    Name: n, Driver: 'local', Mountpoint: join(dir, '_data'), CreatedAt: new Date().toISOString(), Labels: { ...labels }, Options: {}, Scope: 'local',
  };
  await fsp.mkdir(rec.Mountpoint, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.volume.json.${process.pid}.tmp`);
  await fsp.writeFile(tmp, `${JSON.stringify(rec)}\n`);
  await fsp.rename(tmp, join(dir, 'volume.json'));
  return rec;
}

/** The named volume, created when missing (docker run -v NAME:/dir). */
export async function ensureVolume(root: string, name: string): Promise<VolumeRecord> {
  return (await readVolume(root, name)) ?? createVolume(root, name);
}

/** Every volume, sorted by name. */
export async function listVolumes(root: string): Promise<VolumeRecord[]> {
  const names = await fsp.readdir(volumesDir(root)).catch(() => [] as string[]);
  const out: VolumeRecord[] = [];
  for (const n of names.sort()) {
    const v = await readVolume(root, n);
    if (v) out.push(v);
  }
  return out;
}

/** The containers (of any status, until removed) whose record mounts each volume. */
export async function volumeUsers(root: string): Promise<Map<string, VolumeUser[]>> {
  const users = new Map<string, VolumeUser[]>();
  for (const id of await listIds(root)) {
    const rec = await readRecord(root, id);
    const vols = (rec?.mounts ?? []).filter((m) => m.type === 'volume' && m.name);
    if (!rec || !vols.length) continue;
    const info = await containerInfo(root, id).catch(() => undefined);
    if (!info) continue; // an --rm container that just went away
    const running = info.status.status !== 'exited' && info.status.status !== 'created';
    for (const m of vols) {
      const list = users.get(m.name!) ?? [];
      if (!list.some((u) => u.id === id)) list.push({ id, name: rec.name, running });
      users.set(m.name!, list);
    }
  }
  return users;
}

/**
 * Removes a volume and its data (docker volume rm). A volume used by a container is refused
 * with VOLUME_IN_USE naming the container; `force` removes one used only by stopped containers
 * (never one a running container has mounted) and ignores a missing volume.
 */
export async function removeVolume(root: string, name: string, opts: { force?: boolean; users?: Map<string, VolumeUser[]> } = {}): Promise<void> {
  const v = await readVolume(root, name);
  if (!v) {
    if (opts.force) return;
    throw new VolumeError('VOLUME_NOT_FOUND', `no such volume: ${name}`);
  }
  const users = (opts.users ?? (await volumeUsers(root))).get(name) ?? [];
  const running = users.filter((u) => u.running);
  const blocking = opts.force ? running : users;
  if (blocking.length) {
    const who = blocking.map((u) => `${u.name} (${u.id.slice(0, 12)}${u.running ? ', running' : ''})`).join(', ');
    throw new VolumeError('VOLUME_IN_USE', `remove ${name}: volume is in use by container ${who}${opts.force ? '' : '; remove the container first, or force the removal (-f) when it is stopped'}`);
  }
  await removeVolumeDir(root, name);
}

/** Deletes a volume's directory: record first, so a half-removed volume is no longer listed. */
async function removeVolumeDir(root: string, name: string): Promise<void> {
  const dir = volumeDir(root, name);
  await fsp.rm(join(dir, 'volume.json'), { force: true });
  await fsp.rm(dir, { recursive: true, force: true });
}

/**
 * Removes the anonymous volumes a removed container had (docker rm -v, run --rm): only those
 * labelled anonymous and used by no other container. Best effort; returns the names removed.
 */
export async function removeAnonymousVolumes(root: string, names: readonly string[]): Promise<string[]> {
  if (!names.length) return [];
  const users = await volumeUsers(root);
  const out: string[] = [];
  for (const n of names) {
    const v = await readVolume(root, n);
    if (!v || !(ANONYMOUS_LABEL in v.Labels) || (users.get(n) ?? []).length) continue;
    await removeVolumeDir(root, n);
    out.push(n);
  }
  return out;
}

/** Bytes used by a directory tree (allocated blocks, as du). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      const st = await fsp.lstat(p).catch(() => undefined);
      if (!st) continue;
      total += st.blocks * 512;
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return total;
}

/**
 * Removes unused volumes (docker volume prune): anonymous ones by default, every unused one
 * with `all`; `filterLabels` (k or k=v) narrows the selection. Returns names and bytes freed.
 */
export async function pruneVolumes(root: string, opts: { all?: boolean; filterLabels?: string[] } = {}): Promise<{ removed: string[]; reclaimed: number }> {
  const users = await volumeUsers(root);
  const removed: string[] = [];
  let reclaimed = 0;
  for (const v of await listVolumes(root)) {
    if ((users.get(v.Name) ?? []).length) continue;
    if (!opts.all && !(ANONYMOUS_LABEL in v.Labels)) continue;
    const matches = (opts.filterLabels ?? []).every((f) => {
      const i = f.indexOf('=');
      return i < 0 ? f in v.Labels : v.Labels[f.slice(0, i)] === f.slice(i + 1);
    });
    if (!matches) continue;
    reclaimed += await diskUsage(v.Mountpoint);
    await removeVolumeDir(root, v.Name);
    removed.push(v.Name);
  }
  return { removed, reclaimed };
}
