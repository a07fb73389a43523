import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chownSync, chmodSync, lstatSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeRecord, writeStatus, type ContainerRecord } from '../../../runtime/container/records.js';
import { closeFd, fdPath, O, openInRoot, openRootDir } from '../../../runtime/volumes/in-root.js';
import { copyUp } from '../../../runtime/volumes/mounts.js';
import { ANONYMOUS_LABEL, createVolume, inspectVolume, listVolumes, pruneVolumes, removeAnonymousVolumes, removeVolume, volumeUsers } from '../../../runtime/volumes/store.js';

let root = '';
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tsbuild-vol-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A stopped container record that mounts `volumes` (what run writes). */
async function stoppedContainer(id: string, name: string, volumes: { name: string; anonymous?: boolean }[]): Promise<void> {
  mkdirSync(join(root, 'containers', id), { recursive: true });
  const rec: ContainerRecord = {
    id, name, image: 'img', command: ['true'], env: [], created: new Date().toISOString(), autoRemove: false, tty: false, detached: false, init: false,
    stopSignal: 'SIGTERM', cgroupName: `x/${id}`, hostname: 'h', network: 'none',
    mounts: volumes.map((v) => ({ type: 'volume' as const, name: v.name, source: join(root, 'volumes', v.name, '_data'), destination: `/${v.name}`, readonly: false, ...(v.anonymous ? { anonymous: true } : {}) })),
  };
  await writeRecord(root, rec);
  await writeStatus(root, id, { status: 'exited', exitCode: 0 });
}

describe('volume store', () => {
  it('creates volumes in docker\'s local layout; create is idempotent; names are checked', async () => {
    const v = await createVolume(root, 'data', { team: 'a' });
    expect(v).toMatchObject({ Name: 'data', Driver: 'local', Mountpoint: join(root, 'volumes', 'data', '_data'), Labels: { team: 'a' }, Scope: 'local' });
    expect(statSync(v.Mountpoint).isDirectory()).toBe(true);
    expect(JSON.parse(readFileSync(join(root, 'volumes', 'data', 'volume.json'), 'utf8'))).toEqual(v);
    expect(await createVolume(root, 'data', { other: 'b' })).toEqual(v);
    const anon = await createVolume(root, undefined, { [ANONYMOUS_LABEL]: '' });
    expect(anon.Name).toMatch(/^[0-9a-f]{64}$/);
    expect((await listVolumes(root)).map((x) => x.Name).sort()).toEqual([anon.Name, 'data'].sort());
    await expect(createVolume(root, 'x')).rejects.toThrow('includes invalid characters for a local volume name');
    await expect(createVolume(root, '../etc')).rejects.toThrow('invalid characters');
    await expect(inspectVolume(root, 'nope')).rejects.toMatchObject({ code: 'VOLUME_NOT_FOUND' });
  });

  it('refuses to remove a volume a container uses, naming it; -f only past stopped containers', async () => {
    await createVolume(root, 'busy');
    await createVolume(root, 'free');
    await stoppedContainer('a'.repeat(64), 'web', [{ name: 'busy' }]);
    expect((await volumeUsers(root)).get('busy')).toEqual([{ id: 'a'.repeat(64), name: 'web', running: false }]);
    await expect(removeVolume(root, 'busy')).rejects.toThrow(`remove busy: volume is in use by container web (${'a'.repeat(12)})`);
    await removeVolume(root, 'free');
    await expect(removeVolume(root, 'free')).rejects.toMatchObject({ code: 'VOLUME_NOT_FOUND' });
    await removeVolume(root, 'free', { force: true });
    await removeVolume(root, 'busy', { force: true });
    expect(await listVolumes(root)).toEqual([]);
  });

  it('prune removes unused anonymous volumes (all unused with all); anonymous removal skips used ones', async () => {
    const a1 = await createVolume(root, undefined, { [ANONYMOUS_LABEL]: '' });
    const a2 = await createVolume(root, undefined, { [ANONYMOUS_LABEL]: '' });
    await createVolume(root, 'named');
    writeFileSync(join(a1.Mountpoint, 'f'), 'x'.repeat(10000));
    await stoppedContainer('b'.repeat(64), 'db', [{ name: a2.Name, anonymous: true }]);
    const r = await pruneVolumes(root);
    expect(r.removed).toEqual([a1.Name]);
    expect(r.reclaimed).toBeGreaterThanOrEqual(10000);
    expect(await removeAnonymousVolumes(root, [a2.Name, 'named'])).toEqual([]);
    expect((await pruneVolumes(root, { all: true })).removed).toEqual(['named']);
    expect((await listVolumes(root)).map((v) => v.Name)).toEqual([a2.Name]);
  });
});

describe('in-root resolution (CVE-2021-30465 / CVE-2019-14271 class)', () => {
  it('symlinks to host paths and ../ climbs resolve inside the root', () => {
    const r = join(root, 'rootfs');
    mkdirSync(join(r, 'etc'), { recursive: true });
    writeFileSync(join(r, 'etc', 'passwd'), 'container\n');
    symlinkSync('/etc', join(r, 'hostetc'));
    symlinkSync('../../../../../..', join(r, 'up'));
    const rootFd = openRootDir(r);
    try {
      for (const p of ['/hostetc/passwd', '/up/etc/passwd', '/../../etc/passwd', 'up/up/hostetc/passwd']) {
        const fd = openInRoot(rootFd, p, O.RDONLY);
        try {
          expect(readFileSync(fdPath(fd), 'utf8')).toBe('container\n');
        } finally {
          closeFd(fd);
        }
      }
      expect(() => openInRoot(rootFd, '/hostetc/shadow', O.RDONLY)).toThrow(/ENOENT/);
      expect(() => openInRoot(rootFd, '/proc/self/root/etc/passwd', O.RDONLY)).toThrow();
    } finally {
      closeFd(rootFd);
    }
  });

  it('copy-up copies the image directory with owners, modes and links, through an in-root symlink', async () => {
    const r = join(root, 'rootfs');
    mkdirSync(join(r, 'srv', 'data', 'sub'), { recursive: true });
    writeFileSync(join(r, 'srv', 'data', 'sub', 'f'), 'hello');
    chownSync(join(r, 'srv', 'data', 'sub', 'f'), 1234, 5678);
    chmodSync(join(r, 'srv', 'data', 'sub', 'f'), 0o640);
    chownSync(join(r, 'srv', 'data'), 1000, 1000);
    chmodSync(join(r, 'srv', 'data'), 0o750);
    symlinkSync('sub/f', join(r, 'srv', 'data', 'link'));
    // the mount target is a symlink to an absolute path: resolved in the root, not on the host
    symlinkSync('/srv/data', join(r, 'data'));
    const vol = join(root, 'vol');
    mkdirSync(vol);
    expect(await copyUp(r, '/data', vol)).toBe(true);
    expect(readFileSync(join(vol, 'sub', 'f'), 'utf8')).toBe('hello');
    expect(statSync(join(vol, 'sub', 'f'))).toMatchObject({ uid: 1234, gid: 5678 });
    expect(statSync(join(vol, 'sub', 'f')).mode & 0o7777).toBe(0o640);
    expect(statSync(vol)).toMatchObject({ uid: 1000, gid: 1000 });
    expect(statSync(vol).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(vol, 'link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(vol, 'link'))).toBe('sub/f');
    // not empty any more: no second copy
    expect(await copyUp(r, '/data', vol)).toBe(false);
    // a target that does not exist in the image: nothing to copy
    const vol2 = join(root, 'vol2');
    mkdirSync(vol2);
    expect(await copyUp(r, '/nope', vol2)).toBe(false);
    expect(readdirSync(vol2)).toEqual([]);
  });
});
