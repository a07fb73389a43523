import { execFileSync, spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { extractLayer, readTar, tarDirectory, type TarEntry } from '../../../../src/oci/tar/index.js';
import { lgetxattr, lsetxattr, mknod, S_IFCHR, S_IFIFO } from '../../../../src/util/libc.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsbuild-fromdir-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function entries(r: Readable): Promise<(TarEntry & { data: string })[]> {
  const out: (TarEntry & { data: string })[] = [];
  for await (const { entry, body } of readTar(r)) out.push({ ...entry, data: (await bytes(body)).toString('latin1') });
  return out;
}

const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80]);

function sampleTree(root: string): void {
  mkdirSync(join(root, 'b/sub'), { recursive: true });
  mkdirSync(join(root, 'a-c'));
  writeFileSync(join(root, 'b/sub/small'), 'small');
  writeFileSync(join(root, 'b/big'), Buffer.alloc(3 * 1024 * 1024 + 5, 7));
  writeFileSync(join(root, 'b/empty'), '');
  linkSync(join(root, 'b/sub/small'), join(root, 'b/z-hard'));
  symlinkSync('sub/small', join(root, 'b/link'));
  mknod(join(root, 'b/null'), S_IFCHR, 0o666, 1, 3);
  mknod(join(root, 'b/fifo'), S_IFIFO, 0o600);
  lsetxattr(join(root, 'b/sub/small'), 'user.bin', binary);
  lsetxattr(join(root, 'b/sub/small'), 'trusted.overlay.origin', Buffer.from('host-specific'));
  execFileSync('chown', ['-h', '3000000:5', join(root, 'b/link')]);
  utimesSync(join(root, 'b/empty'), new Date(-86400_000), new Date(-86400_000));
}

describe('tarDirectory', () => {
  it('writes a sorted, complete tar with hardlinks, xattrs, devices and symlinks', async () => {
    const src = join(dir, 'src');
    sampleTree(src);
    const got = await entries(tarDirectory(src));
    expect(got.map((e) => `${e.type}:${e.path}`)).toEqual([
      'dir:a-c',
      'dir:b',
      'file:b/big',
      'file:b/empty',
      'fifo:b/fifo',
      'symlink:b/link',
      'char:b/null',
      'dir:b/sub',
      'file:b/sub/small',
      'hardlink:b/z-hard',
    ]);
    const by = new Map(got.map((e) => [e.path, e]));
    expect(by.get('b/big')!.data.length).toBe(3 * 1024 * 1024 + 5);
    expect(by.get('b/sub/small')!.data).toBe('small');
    expect(by.get('b/sub/small')!.xattrs).toEqual(new Map([['user.bin', binary]]));
    expect(by.get('b/z-hard')!.linkname).toBe('b/sub/small');
    expect([by.get('b/link')!.linkname, by.get('b/link')!.uid, by.get('b/link')!.gid]).toEqual(['sub/small', 3000000, 5]);
    expect([by.get('b/null')!.devmajor, by.get('b/null')!.devminor]).toEqual([1, 3]);
    expect(by.get('b/empty')!.mtime).toBe(-86400);
  });

  it('gives identical bytes on two runs, and honours sourceDateEpoch and exclude', async () => {
    const src = join(dir, 'src');
    sampleTree(src);
    const a = await bytes(tarDirectory(src, { sourceDateEpoch: 1_000_000 }));
    const b = await bytes(tarDirectory(src, { sourceDateEpoch: 1_000_000 }));
    expect(a.equals(b)).toBe(true);
    const got = await entries(tarDirectory(src, { sourceDateEpoch: 1_000_000, exclude: (p) => p === 'b/sub' }));
    expect(got.every((e) => e.mtime <= 1_000_000)).toBe(true);
    expect(got.some((e) => e.path.startsWith('b/sub'))).toBe(false);
    // The hardlink's first path was excluded: the second one carries the content.
    expect(got.find((e) => e.path === 'b/z-hard')).toMatchObject({ type: 'file', data: 'small' });
  });

  it('round-trips through extractLayer', async () => {
    const src = join(dir, 'src');
    sampleTree(src);
    const out = join(dir, 'out');
    await extractLayer(tarDirectory(src), out);
    const again = await bytes(tarDirectory(out));
    const orig = await bytes(tarDirectory(src));
    expect(again.equals(orig)).toBe(true);
    expect(lgetxattr(join(out, 'b/sub/small'), 'trusted.overlay.origin')).toBeUndefined();
  });

  const gnu = spawnSync('tar', ['--version'], { encoding: 'utf8' });
  const noTar = gnu.status === 0 ? '' : 'GNU tar not installed';
  if (noTar) console.warn(`skip: ${noTar}`);
  it.skipIf(!!noTar)('is accepted by GNU tar', async () => {
    const src = join(dir, 'src');
    sampleTree(src);
    const file = join(dir, 'l.tar');
    writeFileSync(file, await bytes(tarDirectory(src)));
    const out = join(dir, 'gnu');
    mkdirSync(out);
    execFileSync('tar', ['--xattrs', "--xattrs-include=*", '-xpf', file, '-C', out]);
    expect(lgetxattr(join(out, 'b/sub/small'), 'user.bin')).toEqual(binary);
    expect(lstatSync(join(out, 'b/z-hard')).ino).toBe(lstatSync(join(out, 'b/sub/small')).ino);
    expect(readFileSync(join(out, 'b/big')).length).toBe(3 * 1024 * 1024 + 5);
  });

  it('errors (not ends) when the directory does not exist', async () => {
    await expect(bytes(tarDirectory(join(dir, 'missing')))).rejects.toThrow(/ENOENT/);
  });
});

describe('tarDirectory of an overlayfs upper directory', () => {
  let ovl: string;
  let why = '';
  beforeAll(() => {
    ovl = mkdtempSync(join(tmpdir(), 'tsbuild-ovl-'));
    for (const d of ['lower/d', 'upper', 'work', 'merged']) mkdirSync(join(ovl, d), { recursive: true });
    writeFileSync(join(ovl, 'lower/x'), 'x');
    writeFileSync(join(ovl, 'lower/keep'), 'keep');
    writeFileSync(join(ovl, 'lower/d/old'), 'old');
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${ovl}/lower,upperdir=${ovl}/upper,workdir=${ovl}/work`, `${ovl}/merged`], {
      encoding: 'utf8',
    });
    if (m.status !== 0) {
      why = `cannot mount overlayfs: ${(m.stderr || m.error?.message || '').trim()}`;
      return;
    }
    try {
      rmSync(join(ovl, 'merged/x'));
      rmSync(join(ovl, 'merged/d'), { recursive: true });
      mkdirSync(join(ovl, 'merged/d'));
      writeFileSync(join(ovl, 'merged/d/new'), 'new');
    } finally {
      execFileSync('umount', [`${ovl}/merged`]);
    }
  });
  afterAll(() => {
    spawnSync('umount', [`${ovl}/merged`], { stdio: 'ignore' });
    rmSync(ovl, { recursive: true, force: true });
  });

  it('converts whiteouts and opaque directories to OCI form, and back', async (ctx) => {
    if (why) {
      console.warn(`skip: ${why}`);
      ctx.skip();
    }
    const got = await entries(tarDirectory(join(ovl, 'upper'), { overlayUpper: true }));
    // the whiteout takes the place of `x` in the name order
    expect(got.map((e) => `${e.type}:${e.path}`)).toEqual(['dir:d', 'file:d/.wh..wh..opq', 'file:d/new', 'file:.wh.x']);
    expect(got.every((e) => !e.xattrs || [...e.xattrs.keys()].every((k) => !k.startsWith('trusted.overlay.')))).toBe(true);

    // apply onto a copy of the lower layer: the merged view
    const applied = join(ovl, 'applied');
    execFileSync('cp', ['-a', join(ovl, 'lower'), applied]);
    await extractLayer(tarDirectory(join(ovl, 'upper'), { overlayUpper: true }), applied);
    expect(readdirSync(applied).sort()).toEqual(['d', 'keep']);
    expect(readdirSync(join(applied, 'd'))).toEqual(['new']);

    // overlay form: usable as an upper layer again, identical tar
    const asOverlay = join(ovl, 'as-overlay');
    await extractLayer(tarDirectory(join(ovl, 'upper'), { overlayUpper: true }), asOverlay, { whiteouts: 'overlay' });
    expect(lstatSync(join(asOverlay, 'x')).isCharacterDevice()).toBe(true);
    const a = await bytes(tarDirectory(join(ovl, 'upper'), { overlayUpper: true }));
    const b = await bytes(tarDirectory(asOverlay, { overlayUpper: true }));
    expect(b.equals(a)).toBe(true);
  });
});
