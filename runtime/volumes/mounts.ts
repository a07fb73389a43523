/**
 * Turns a container's mount requests (and its image's VOLUMEs) into spec mounts: volumes are
 * created or looked up, anonymous ones made, an empty volume gets the image's content at its
 * target copied up (docker's copy-up), and every mount is described for the container record.
 */
import { promises as fsp, statSync } from 'node:fs';
import { posix } from 'node:path';
import type { MountRecord } from '../container/records.js';
import type { Mount } from '../spec/types.js';
import { VolumeError } from './errors.js';
import { closeFd, mkdirAllInRoot, openRootDir } from './in-root.js';
import { statIn, walk, writeItems } from './tree.js';
import type { MountRequest } from './mount-spec.js';
import { ANONYMOUS_LABEL, createVolume, ensureVolume, removeAnonymousVolumes } from './store.js';

/** What {@link planMounts} decided. */
export interface PlannedMounts {
  /** Bind mounts for specFromImage, parents before children (docker sorts by depth). */
  binds: { source: string; destination: string; readonly: boolean }[];
  /** tmpfs mounts for specFromImage. */
  tmpfs: { destination: string; options: string[] }[];
  /** For the container record (inspect's Mounts; volume users). */
  records: MountRecord[];
  /** Anonymous volumes made for this container (removed again if the run fails). */
  anonymous: string[];
  /** Sets the propagation and recursion options of the planned binds on the generated spec. */
  applyTo(mounts: Mount[]): void;
}

const depth = (p: string) => p.split('/').filter(Boolean).length;

/**
 * Plans the mounts of a container whose rootfs is mounted at `rootfs`. `imageVolumes` are the
 * image config's Volumes keys; each one not covered by a request becomes an anonymous volume.
 * `otherTargets` are destinations mounted by other means (--tmpfs): they count as taken.
 * Throws VolumeError INVALID_MOUNT for a duplicate target or a missing bind source. On failure
 * the anonymous volumes it made are removed.
 */
export async function planMounts(root: string, rootfs: string, requests: readonly MountRequest[], imageVolumes: readonly string[] = [], otherTargets: readonly string[] = []): Promise<PlannedMounts> {
  const all: MountRequest[] = [...requests];
  const targets = new Set<string>();
  for (const r of [...otherTargets.map((t) => ({ target: posix.normalize(t).replace(/(.)\/$/, '$1') })), ...requests]) {
    if (targets.has(r.target)) throw new VolumeError('INVALID_MOUNT', `duplicate mount point: ${r.target}`);
    targets.add(r.target);
  }
  for (const v of imageVolumes) {
    const t = posix.normalize(v.startsWith('/') ? v : `/${v}`).replace(/(.)\/$/, '$1');
    if (t === '/' || targets.has(t)) continue;
    targets.add(t);
    all.push({ type: 'volume', target: t, readonly: false });
  }
  all.sort((a, b) => depth(a.target) - depth(b.target));
  const anonymous: string[] = [];
  const binds: PlannedMounts['binds'] = [];
  const tmpfs: PlannedMounts['tmpfs'] = [];
  const records: MountRecord[] = [];
  const bindOpts = new Map<string, string[]>();
  try {
    for (const r of all) {
      if (r.type === 'tmpfs') {
        const options = [...(r.size !== undefined ? [`size=${r.size}`] : []), ...(r.mode !== undefined ? [`mode=${r.mode.toString(8)}`] : []), ...(r.readonly ? ['ro'] : [])];
        tmpfs.push({ destination: r.target, options });
        records.push({ type: 'tmpfs', source: '', destination: r.target, readonly: r.readonly });
        continue;
      }
      if (r.type === 'bind') {
        const st = await fsp.stat(r.source).catch(() => undefined);
        if (!st) {
          throw new VolumeError('INVALID_MOUNT', r.fromVolumeFlag
            ? `bind mount source path ${r.source} does not exist`
            : `invalid mount config for type "bind": bind source path does not exist: ${r.source}`);
        }
        const propagation = r.propagation ?? 'rprivate';
        binds.push({ source: r.source, destination: r.target, readonly: r.readonly });
        bindOpts.set(r.target, [r.nonRecursive ? 'bind' : 'rbind', propagation, r.readonly ? 'ro' : 'rw']);
        records.push({ type: 'bind', source: r.source, destination: r.target, readonly: r.readonly, propagation });
        continue;
      }
      let name = r.source;
      let mountpoint: string;
      if (name) mountpoint = (await ensureVolume(root, name)).Mountpoint;
      else {
        const v = await createVolume(root, undefined, { ...(r.labels ?? {}), [ANONYMOUS_LABEL]: '' });
        anonymous.push(v.Name);
        name = v.Name;
        mountpoint = v.Mountpoint;
      }
      if (!r.noCopy) await copyUp(rootfs, r.target, mountpoint);
      binds.push({ source: mountpoint, destination: r.target, readonly: r.readonly });
      bindOpts.set(r.target, ['rbind', 'rprivate', r.readonly ? 'ro' : 'rw']);
      records.push({ type: 'volume', name, source: mountpoint, destination: r.target, readonly: r.readonly, propagation: 'rprivate', ...(r.source ? {} : { anonymous: true }) });
    }
  } catch (e) {
    await removeAnonymousVolumes(root, anonymous).catch(() => undefined);
    throw e;
  }
  // directory mount targets are made here, in the root, so a dangling symlink on the way
  // (`/data -> /srv/x`) is created inside it; the helper then resolves the same path in-root
  const dirTargets = records.filter((m) => m.type !== 'bind' || statSync(m.source).isDirectory()).map((m) => m.destination);
  if (dirTargets.length) {
    const rootFd = openRootDir(rootfs);
    try {
      for (const t of dirTargets) {
        try {
          mkdirAllInRoot(rootFd, t);
        } catch {
          // a file in the way: the helper reports it with the mount that needs it
        }
      }
    } finally {
      closeFd(rootFd);
    }
  }
  return {
    binds, tmpfs, records, anonymous,
    applyTo(mounts) {
      for (const m of mounts) {
        const o = m.type === 'bind' ? bindOpts.get(m.destination) : undefined;
        if (o && binds.some((b) => b.destination === m.destination && b.source === m.source)) m.options = [...o];
      }
    },
  };
}

/**
 * Docker's copy-up: when the volume directory `volumeDir` is empty and `target` is a directory
 * in the container's root, its content (ownership, modes, times, symlinks, hardlinks, devices)
 * is copied into the volume and the volume root takes the directory's owner and mode. Both
 * sides are walked through in-root fds: a symlink at `target` pointing at a host path
 * (CVE-2021-30465 class) names the container's own directory, and another container sharing
 * the volume cannot redirect the writes out of it by swapping in symlinks.
 */
export async function copyUp(rootfs: string, target: string, volumeDir: string): Promise<boolean> {
  if ((await fsp.readdir(volumeDir)).length) return false;
  const rootFd = openRootDir(rootfs);
  let volFd: number | undefined;
  try {
    const st = statIn(rootFd, target, true);
    if (!st?.isDirectory()) return false; // missing, or not a directory: nothing to copy
    volFd = openRootDir(volumeDir);
    await writeItems(volFd, walk(rootFd, target, true, 'the image'), (rel) => `/${rel}`, { owner: 'keep', what: `volume ${volumeDir}` });
    await fsp.chown(volumeDir, st.uid, st.gid);
    await fsp.chmod(volumeDir, st.mode & 0o7777);
    return true;
  } finally {
    closeFd(volFd);
    closeFd(rootFd);
  }
}
