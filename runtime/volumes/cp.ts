/**
 * `tsbuild cp`: copies between a container's filesystem and the host (or a tar stream) with
 * docker cp's path rules. Every path inside the container is opened with openat2
 * RESOLVE_IN_ROOT relative to a directory fd of the container's root, and trees are walked fd
 * by fd with the last component never followed, so a symlink in the container (to /etc/shadow,
 * `../../..`, or swapped in while the copy runs) can never make cp read or write a host path
 * (CVE-2019-14271 class).
 *
 * The container's root: for a running (or paused) container `/proc/<pid>/root`, which shows its
 * volumes and bind mounts exactly as the container sees them; for a created or exited one, its
 * overlay is mounted for the copy and its volumes and binds are bind-mounted onto their targets
 * (targets resolved in the root), then everything is unmounted again. tmpfs mounts of a stopped
 * container have no content: a copy writes to the directory beneath, as docker does.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { containerInfo, lockRecord, recordPaths, type ContainerRecord } from '../container/records.js';
import { isSameProcess, readState } from '../container/state.js';
import { VolumeError } from './errors.js';
import { closeFd, fdPath, O, openInRoot, openRootDir } from './in-root.js';
import { statIn, walk, writeItems } from './tree.js';

/** Options of a copy. */
export interface CopyOptions {
  /** -a: keep uid/gid of the source (default: root in the container, the caller on the host). */
  archive?: boolean;
  /** -L: follow a symlink that is the source path itself. */
  followLink?: boolean;
}

/** The root of a container's filesystem as a dirfd, and how to release it. */
interface ContainerRoot { fd: number; record: ContainerRecord; release(): Promise<void> }

/** Opens the root of container `id` (see the module comment). The caller calls release(). */
async function openContainerRoot(root: string, id: string): Promise<ContainerRoot> {
  const info = await containerInfo(root, id);
  if (!info) throw new VolumeError('PATH_NOT_FOUND', `no such container: ${id}`);
  const rec = info.record;
  if (info.status.status === 'running' || info.status.status === 'paused') {
    const st = await readState(join(root, 'run'), id).catch(() => undefined);
    if (st?.pid && isSameProcess(st.pid, st.pidStartTime)) {
      const fd = openRootDir(`/proc/${st.pid}/root`);
      return { fd, record: rec, release: async () => closeFd(fd) };
    }
  }
  return mountStopped(root, rec);
}

function isMountPoint(path: string): boolean {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  const esc = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((l) => l.split(' ')[4] === esc);
}

/** Mounts a stopped container's overlay and its volume/bind mounts for the duration of a copy. */
async function mountStopped(root: string, rec: ContainerRecord): Promise<ContainerRoot> {
  const p = recordPaths(root, rec.id);
  const unlock = await lockRecord(root, rec.id);
  const { mount, umount2, MNT_DETACH, MS_RDONLY } = await import('../rootfs/mount.js');
  const undo: (() => void)[] = [];
  let rootFd: number | undefined;
  try {
    if (!isMountPoint(p.rootfs)) {
      if (!rec.imageId) throw new VolumeError('IO', `container ${rec.name} has no image id to mount its filesystem from`);
      const { ImageStore } = await import('../../src/oci/store/image-store.js');
      const { SnapshotStore } = await import('../rootfs/snapshots.js');
      const { prepareRootfs, unmount } = await import('../rootfs/prepare.js');
      const store = await ImageStore.open(root);
      const { image } = await store.imageFor(rec.imageId).catch((e: unknown) => {
        throw new VolumeError('IO', `mounting the filesystem of container ${rec.name}: its image ${rec.image} is not in the store`, { cause: e });
      });
      await prepareRootfs(new SnapshotStore(root), image, p.dir);
      undo.push(() => unmount(p.rootfs));
    }
    rootFd = openRootDir(p.rootfs);
    const MS_BIND = 4096;
    const MS_REC = 16384;
    const MS_REMOUNT = 32;
    for (const m of rec.mounts ?? []) {
      if (m.type === 'tmpfs' || !m.source) continue;
      const st = await fsp.stat(m.source).catch(() => undefined);
      if (!st) continue;
      let fd: number;
      try {
        fd = openInRoot(rootFd, m.destination, O.PATH);
      } catch {
        continue; // the target is gone from the rootfs: nothing is mounted there
      }
      try {
        const target = fdPath(fd);
        mount(m.source, target, '', MS_BIND | MS_REC, null);
        // the mount is on top now: undo through its own path fd
        const mfd = openInRoot(rootFd, m.destination, O.PATH);
        undo.push(() => {
          umount2(fdPath(mfd), MNT_DETACH);
          closeFd(mfd);
        });
        if (m.readonly) mount('', fdPath(mfd), '', MS_BIND | MS_REMOUNT | MS_RDONLY, null);
      } finally {
        closeFd(fd);
      }
    }
  } catch (e) {
    closeFd(rootFd);
    for (const u of undo.reverse()) {
      try { u(); } catch { /* best effort */ }
    }
    await unlock().catch(() => undefined);
    throw e;
  }
  const fd = rootFd;
  return {
    fd, record: rec,
    release: async () => {
      closeFd(fd);
      let first: unknown;
      for (const u of undo.reverse()) {
        try { u(); } catch (e) { first ??= e; }
      }
      await unlock().catch(() => undefined);
      if (first) throw first;
    },
  };
}

/** docker cp's destination rules: where the top of a copied tree lands. */
function placeTop(rootFd: number, srcIsDir: boolean, srcPath: string, destPath: string, where: string): string {
  const destSt = statIn(rootFd, destPath, true);
  const srcBase = posix.basename(posix.normalize('/' + srcPath)) || '.';
  const contentsOnly = /\/\.$/.test(srcPath) || srcBase === '.';
  if (srcIsDir) {
    if (!destSt) {
      const parent = statIn(rootFd, posix.dirname(posix.normalize('/' + destPath)), true);
      if (!parent?.isDirectory()) throw new VolumeError('INVALID_COPY', `destination directory ${posix.dirname(destPath)} does not exist in ${where}`);
      return posix.normalize('/' + destPath);
    }
    if (!destSt.isDirectory()) throw new VolumeError('INVALID_COPY', `cannot copy a directory to a file: ${destPath} in ${where} is not a directory`);
    return contentsOnly ? posix.normalize('/' + destPath) : posix.join('/', destPath, srcBase);
  }
  if (destSt?.isDirectory()) return posix.join('/', destPath, srcBase);
  if (!destSt && destPath.endsWith('/')) throw new VolumeError('INVALID_COPY', `destination directory ${destPath} does not exist in ${where}`);
  const parent = statIn(rootFd, posix.dirname(posix.normalize('/' + destPath)), true);
  if (!parent?.isDirectory()) throw new VolumeError('INVALID_COPY', `destination directory ${posix.dirname(destPath)} does not exist in ${where}`);
  return posix.normalize('/' + destPath);
}

/** Host paths are relative to the caller's working directory; the host "root" is / itself. */
function hostAbs(p: string): string {
  const abs = p.startsWith('/') ? p : join(process.cwd(), p);
  return abs + (p.endsWith('/') && !abs.endsWith('/') ? '/' : '') + (/\/\.$/.test(p) && !abs.endsWith('/.') ? '/.' : '');
}

/** A source path whose last component must be followed: -L, or a trailing `/` or `/.` (docker). */
function followsLast(p: string, opts: CopyOptions): boolean {
  return !!opts.followLink || p.endsWith('/') || /\/\.$/.test(p);
}

/**
 * Copies `srcPath` out of container `id` to `dest`: a host path (docker cp's rules for files,
 * directories, trailing `/` and `/.`), or a Writable that receives a tar stream of it (`-`).
 */
export async function copyFromContainer(root: string, id: string, srcPath: string, dest: string | Writable, opts: CopyOptions = {}): Promise<void> {
  const ctr = await openContainerRoot(root, id);
  const what = `container ${ctr.record.name}`;
  let primary: unknown;
  try {
    const srcSt = statIn(ctr.fd, srcPath, followsLast(srcPath, opts));
    if (!srcSt) throw new VolumeError('PATH_NOT_FOUND', `could not find the file ${srcPath} in ${what}`);
    const items = walk(ctr.fd, srcPath, followsLast(srcPath, opts), what);
    if (typeof dest !== 'string') {
      const { TarWriter } = await import('../../src/oci/tar/writer.js');
      const w = new TarWriter();
      const top = posix.basename(posix.normalize('/' + srcPath)) || '.';
      const done = pipeline(w.stream, dest);
      try {
        for await (const { entry, body } of items) {
          const path = entry.path ? posix.join(top, entry.path) : top;
          await w.add({ ...entry, path, ...(entry.type === 'hardlink' ? { linkname: posix.join(top, entry.linkname ?? '') } : {}) }, body?.());
        }
        await w.finish();
      } catch (e) {
        w.stream.destroy(e as Error);
        throw e;
      }
      await done;
      return;
    }
    const hostRoot = openRootDir('/');
    try {
      const abs = hostAbs(dest);
      const top = placeTop(hostRoot, srcSt.isDirectory(), srcPath, abs, 'the host');
      await writeItems(hostRoot, items, (rel) => posix.join(top, rel), { ...(opts.archive ? { owner: 'keep' as const } : {}), what: 'the host' });
    } finally {
      closeFd(hostRoot);
    }
  } catch (e) {
    primary = e;
  }
  try {
    await ctr.release();
  } catch (e) {
    if (!primary) primary = e;
  }
  if (primary) throw primary;
}

/**
 * Copies `src` into container `id` at `destPath`: a host path (docker cp's rules), or a
 * Readable tar stream (`-`) extracted into the existing directory `destPath`. Files are owned
 * by root in the container unless `archive` keeps the source's uid/gid.
 */
export async function copyToContainer(root: string, id: string, src: string | Readable, destPath: string, opts: CopyOptions = {}): Promise<void> {
  const ctr = await openContainerRoot(root, id);
  const what = `container ${ctr.record.name}`;
  const owner = opts.archive ? ('keep' as const) : { uid: 0, gid: 0 };
  let primary: unknown;
  try {
    if (typeof src !== 'string') {
      const destSt = statIn(ctr.fd, destPath, true);
      if (!destSt?.isDirectory()) throw new VolumeError('INVALID_COPY', `destination ${destPath} in ${what} must be an existing directory when copying a tar stream`);
      const base = posix.normalize('/' + destPath);
      const { readTar } = await import('../../src/oci/tar/reader.js');
      const items = (async function* () {
        for await (const { entry, body } of readTar(src)) yield { entry, body: () => body };
      })();
      await writeItems(ctr.fd, items, (rel) => {
        const p = posix.join(base, rel);
        // a member climbing out of the destination is dropped (docker's untar refuses breakouts)
        return p === base || p.startsWith(base === '/' ? '/' : `${base}/`) ? p : undefined;
      }, { owner, what });
      return;
    }
    const hostRoot = openRootDir('/');
    try {
      const abs = hostAbs(src);
      const srcSt = statIn(hostRoot, abs, followsLast(src, opts));
      if (!srcSt) throw new VolumeError('PATH_NOT_FOUND', `lstat ${src}: no such file or directory`);
      const top = placeTop(ctr.fd, srcSt.isDirectory(), abs, destPath, what);
      await writeItems(ctr.fd, walk(hostRoot, abs, followsLast(src, opts), 'the host'), (rel) => posix.join(top, rel), { owner, what });
    } finally {
      closeFd(hostRoot);
    }
  } catch (e) {
    primary = e;
  }
  try {
    await ctr.release();
  } catch (e) {
    if (!primary) primary = e;
  }
  if (primary) throw primary;
}
