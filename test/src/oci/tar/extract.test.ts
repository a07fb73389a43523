import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractLayer, TarWriter, type TarEntry } from '../../../../src/oci/tar/index.js';
import { hasCode } from '../../../../src/util/errors.js';
import { lgetxattr, splitDev } from '../../../../src/util/libc.js';

const LAYERS = new URL('../../../../testdata/layers/', import.meta.url).pathname;
const PROBES = [
  'tsbuild-dotdot-probe.txt',
  'tsbuild-absolute-probe.txt',
  'tsbuild-symlink-probe-1.txt',
  'tsbuild-symlink-probe-2.txt',
  'tsbuild-pax-probe.txt',
];

let base: string;
let target: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'tsbuild-extract-'));
  target = join(base, 'nested', 'target');
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

/** Asserts that no probe file appeared outside the target: in its parents, /tmp or /. */
function assertNothingOutside(): void {
  for (const dir of [base, join(base, 'nested'), tmpdir(), '/', '/etc']) {
    for (const p of PROBES) expect(existsSync(join(dir, p)), `${p} in ${dir}`).toBe(false);
  }
  expect(readdirSync(base)).toEqual(['nested']);
  expect(readdirSync(join(base, 'nested'))).toEqual(['target']);
}

async function extractFixture(name: string, opts?: Parameters<typeof extractLayer>[2]): Promise<unknown> {
  try {
    await extractLayer(createReadStream(join(LAYERS, name)), target, opts);
    return undefined;
  } catch (e) {
    return e;
  }
}

function tarOf(entries: [TarEntry, Buffer?][]): Readable {
  const w = new TarWriter();
  void (async () => {
    for (const [e, b] of entries) await w.add(e, b);
    await w.finish();
  })();
  return w.stream;
}

const f = (path: string, data: string, extra?: Partial<TarEntry>): [TarEntry, Buffer] => {
  const b = Buffer.from(data);
  return [{ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: b.length, mtime: 1_600_000_000, ...extra }, b];
};
const d = (path: string, extra?: Partial<TarEntry>): [TarEntry] => [
  { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000, ...extra },
];

describe('extractLayer: hostile archives', () => {
  it('rejects ../ traversal with UNSAFE_PATH', async () => {
    const err = await extractFixture('dotdot.tar');
    expect(hasCode(err, 'UNSAFE_PATH')).toBe(true);
    expect(readFileSync(join(target, 'ok.txt'), 'utf8')).toBe('fine\n');
    assertNothingOutside();
  });

  it('rejects .. inside a path with UNSAFE_PATH', async () => {
    const err = await extractFixture('dotdot-inner.tar');
    expect(hasCode(err, 'UNSAFE_PATH')).toBe(true);
    assertNothingOutside();
  });

  it('takes absolute names relative to the target', async () => {
    expect(await extractFixture('absolute.tar')).toBeUndefined();
    expect(readFileSync(join(target, 'tsbuild-absolute-probe.txt'), 'utf8')).toBe('absolute\n');
    assertNothingOutside();
  });

  it('never writes through a symlink that points outside', async () => {
    expect(await extractFixture('symlink-escape.tar')).toBeUndefined();
    // Both symlinks resolve as if the target were /, so the files land at the target's root.
    expect(readlinkSync(join(target, 'esc1'))).toBe('../../../../../../../..');
    expect(readFileSync(join(target, 'tsbuild-symlink-probe-1.txt'), 'utf8')).toBe('through relative symlink\n');
    expect(readFileSync(join(target, 'tsbuild-symlink-probe-2.txt'), 'utf8')).toBe('through absolute symlink\n');
    assertNothingOutside();
  });

  it('rejects a hardlink to ../ with UNSAFE_PATH', async () => {
    const before = statSync('/etc/passwd').nlink;
    const err = await extractFixture('hardlink-dotdot.tar');
    expect(hasCode(err, 'UNSAFE_PATH')).toBe(true);
    expect(statSync('/etc/passwd').nlink).toBe(before);
    assertNothingOutside();
  });

  it('resolves a hardlink through a symlink inside the target only', async () => {
    const before = statSync('/etc/passwd').nlink;
    const err = await extractFixture('hardlink-via-symlink.tar');
    // s -> /etc means <target>/etc, which has no passwd: the link cannot be made.
    expect(hasCode(err, 'INVALID_TAR')).toBe(true);
    expect(existsSync(join(target, 'h'))).toBe(false);
    expect(statSync('/etc/passwd').nlink).toBe(before);
    assertNothingOutside();
  });

  it('writes a file under a symlink to a directory into that directory', async () => {
    expect(await extractFixture('symlink-dir.tar')).toBeUndefined();
    expect(lstatSync(join(target, 'lib')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(target, 'usr/lib/libx.so'), 'utf8')).toBe('\x7fELF-not-really\n');
    assertNothingOutside();
  });

  it('rejects a whiteout naming .. with UNSAFE_PATH', async () => {
    mkdirSync(join(target, 'keep'), { recursive: true });
    const err = await extractFixture('whiteout-traversal.tar');
    expect(hasCode(err, 'UNSAFE_PATH')).toBe(true);
    expect(existsSync(join(target, 'keep'))).toBe(true);
    assertNothingOutside();
  });

  it('creates device nodes and fifos', async () => {
    expect(await extractFixture('devices.tar')).toBeUndefined();
    const n = lstatSync(join(target, 'null'));
    expect(n.isCharacterDevice()).toBe(true);
    expect(splitDev(n.rdev)).toEqual({ major: 1, minor: 3 });
    expect(n.mode & 0o7777).toBe(0o666);
    const l = lstatSync(join(target, 'loop0'));
    expect(l.isBlockDevice()).toBe(true);
    expect(splitDev(l.rdev)).toEqual({ major: 7, minor: 0 });
    expect(lstatSync(join(target, 'fifo')).isFIFO()).toBe(true);
    assertNothingOutside();
  });

  it('fails with INVALID_TAR on a huge size header', async () => {
    const err = await extractFixture('huge-size.tar');
    expect(hasCode(err, 'INVALID_TAR')).toBe(true);
    assertNothingOutside();
  });

  it('fails with INVALID_TAR on a truncated archive', async () => {
    const err = await extractFixture('truncated.tar');
    expect(hasCode(err, 'INVALID_TAR')).toBe(true);
    assertNothingOutside();
  });

  it('rejects a PAX path with .. even when the ustar name looks safe', async () => {
    const err = await extractFixture('pax-traversal.tar');
    expect(hasCode(err, 'UNSAFE_PATH')).toBe(true);
    expect(readdirSync(target)).toEqual([]);
    assertNothingOutside();
  });

  it('fails with INVALID_TAR on garbage input and does not crash', async () => {
    const err = await extractLayer(Readable.from([Buffer.alloc(1024, 0x41)]), target).catch((e: unknown) => e);
    expect(hasCode(err, 'INVALID_TAR')).toBe(true);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const err = await extractLayer(tarOf([f('a', 'x')]), target, { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('stop');
    expect(existsSync(join(target, 'a'))).toBe(false);
  });
});

describe('extractLayer: whiteouts', () => {
  function lower(): void {
    mkdirSync(join(target, 'd/sub'), { recursive: true });
    writeFileSync(join(target, 'gone'), 'lower');
    writeFileSync(join(target, 'd/old'), 'lower');
    writeFileSync(join(target, 'd/sub/deep'), 'lower');
    mkdirSync(join(target, 'dir-gone/x'), { recursive: true });
  }

  it("applies deletions and opaque directories in 'apply' mode", async () => {
    lower();
    await extractLayer(
      tarOf([
        f('.wh.gone', ''),
        f('.wh.dir-gone', ''),
        d('d'),
        f('d/.wh..wh..opq', ''),
        f('d/new', 'upper'),
        f('.wh..wh.plnk', ''),
      ]),
      target,
    );
    expect(existsSync(join(target, 'gone'))).toBe(false);
    expect(existsSync(join(target, 'dir-gone'))).toBe(false);
    expect(readdirSync(join(target, 'd'))).toEqual(['new']);
    expect(readdirSync(target).sort()).toEqual(['d']);
  });

  it('keeps what the same layer put in an opaque directory before the marker', async () => {
    lower();
    await extractLayer(tarOf([d('d'), d('d/sub'), f('d/sub/mine', 'upper'), f('d/.wh..wh..opq', '')]), target);
    expect(readdirSync(join(target, 'd'))).toEqual(['sub']);
    expect(readdirSync(join(target, 'd/sub'))).toEqual(['mine']);
  });

  it("writes overlayfs whiteouts in 'overlay' mode", async () => {
    await extractLayer(tarOf([f('.wh.gone', ''), d('d'), f('d/.wh..wh..opq', ''), f('d/new', 'upper')]), target, {
      whiteouts: 'overlay',
    });
    const w = lstatSync(join(target, 'gone'));
    expect(w.isCharacterDevice()).toBe(true);
    expect(w.rdev).toBe(0);
    expect(lgetxattr(join(target, 'd'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(readFileSync(join(target, 'd/new'), 'utf8')).toBe('upper');
  });
});

describe('extractLayer: metadata', () => {
  it('restores owners, setuid modes, mtimes (directories last), xattrs and hardlinks', async () => {
    const cap = Buffer.from('0100000200100000000000000000000000000000', 'hex');
    await extractLayer(
      tarOf([
        d('bin', { mode: 0o750, uid: 3000000, gid: 42, mtime: 1_000_000_000 }),
        f('bin/su', 'elf', { mode: 0o4755, uid: 0, gid: 0, mtime: -315619200 }),
        f('bin/ping', 'elf2', { xattrs: new Map([['security.capability', cap], ['user.bin', Buffer.from([0xff, 0, 0xfe])]]) }),
        [{ path: 'bin/su2', type: 'hardlink', linkname: 'bin/su', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 }],
        [{ path: 'bin/sh', type: 'symlink', linkname: 'su', mode: 0o777, uid: 7, gid: 8, size: 0, mtime: 1_234_567_890 }],
      ]),
      target,
    );
    const dir = lstatSync(join(target, 'bin'));
    expect([dir.uid, dir.gid, dir.mode & 0o7777, dir.mtimeMs / 1000]).toEqual([3000000, 42, 0o750, 1_000_000_000]);
    const su = lstatSync(join(target, 'bin/su'));
    expect([su.mode & 0o7777, su.mtimeMs / 1000, su.nlink]).toEqual([0o4755, -315619200, 2]);
    expect(lstatSync(join(target, 'bin/su2')).ino).toBe(su.ino);
    expect(lgetxattr(join(target, 'bin/ping'), 'security.capability')).toEqual(cap);
    expect(lgetxattr(join(target, 'bin/ping'), 'user.bin')).toEqual(Buffer.from([0xff, 0, 0xfe]));
    const sh = lstatSync(join(target, 'bin/sh'));
    expect([sh.isSymbolicLink(), sh.uid, sh.gid, sh.mtimeMs / 1000]).toEqual([true, 7, 8, 1_234_567_890]);
  });

  it('keeps archive order for repeated paths and replacements among concurrent small files', async () => {
    const many: [TarEntry, Buffer?][] = [];
    for (let i = 0; i < 200; i++) many.push(f(`d${i % 7}/f${i}`, `v${i}`));
    await extractLayer(
      tarOf([...many, f('same', 'first'), f('same', 'second'), f('x', 'file'), d('x'), f('x/inner', 'in'), f('d3/f3', 'again')]),
      target,
    );
    expect(readFileSync(join(target, 'same'), 'utf8')).toBe('second');
    expect(readFileSync(join(target, 'x/inner'), 'utf8')).toBe('in');
    expect(readFileSync(join(target, 'd3/f3'), 'utf8')).toBe('again');
    expect(readFileSync(join(target, 'd3/f199'), 'utf8')).toBe('v199');
    expect(readdirSync(join(target, 'd0')).length).toBe(29);
  });

  it('replaces files, symlinks and directories of lower layers without following them', async () => {
    mkdirSync(join(target, 'adir/inner'), { recursive: true });
    const outside = join(base, 'outside.txt');
    writeFileSync(outside, 'outside');
    execFileSync('ln', ['-s', outside, join(target, 'link')]);
    await extractLayer(tarOf([f('adir', 'now a file'), f('link', 'replaced')]), target);
    expect(readFileSync(join(target, 'adir'), 'utf8')).toBe('now a file');
    expect(lstatSync(join(target, 'link')).isFile()).toBe(true);
    expect(readFileSync(outside, 'utf8')).toBe('outside');
  });
});
