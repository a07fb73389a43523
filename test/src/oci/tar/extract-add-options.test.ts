/**
 * extractLayer's options for Dockerfile ADD of an archive: `hardlinkMetadata` (a hardlink
 * entry's owner, mode and mtime apply to the inode it shares, as Docker's archive package and so
 * BuildKit do) and `owner` (ADD --chown owns every entry, as BuildKit since v0.23; directories the
 * tar only implies stay 0:0). The defaults keep layer extraction as it was.
 */
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractLayer, TarWriter, type TarEntry } from '../../../../src/oci/tar/index.js';

const why = process.getuid?.() === 0 ? undefined : 'needs root (chown)';
if (why) console.warn(`skip: ${why}`);

let target: string;
beforeEach(() => {
  target = mkdtempSync(join(tmpdir(), 'tsbuild-extract-add-'));
});
afterEach(() => rmSync(target, { recursive: true, force: true }));

function tarOf(entries: [TarEntry, Buffer?][]): Readable {
  const w = new TarWriter();
  void (async () => {
    for (const [e, b] of entries) await w.add(e, b);
    await w.finish();
  })();
  return w.stream;
}

const entries = (): [TarEntry, Buffer?][] => [
  [{ path: 'odd', type: 'dir', mode: 0o750, uid: 1000, gid: 1000, size: 0, mtime: 1_700_000_000 }],
  [{ path: 'odd/owned.txt', type: 'file', mode: 0o644, uid: 1000, gid: 1001, size: 3, mtime: 1_700_000_000 }, Buffer.from('abc')],
  [{ path: 'odd/setuid', type: 'file', mode: 0o4755, uid: 0, gid: 0, size: 1, mtime: 1_700_000_000 }, Buffer.from('x')],
  [{ path: 'odd/hard', type: 'hardlink', linkname: 'odd/owned.txt', mode: 0o600, uid: 5, gid: 6, size: 0, mtime: 1_600_000_000 }],
  [{ path: 'implied/parent/f', type: 'file', mode: 0o600, uid: 0, gid: 0, size: 1, mtime: 1_700_000_000 }, Buffer.from('y')],
];

const meta = (p: string) => {
  const st = lstatSync(join(target, p));
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: Math.round(st.mtimeMs / 1000) };
};

describe.skipIf(!!why)('extractLayer: ADD options', () => {
  it('by default a hardlink entry keeps its target\'s metadata and the tar\'s owners stay', async () => {
    await extractLayer(tarOf(entries()), target, { whiteouts: 'apply' });
    expect(meta('odd/hard')).toEqual({ uid: 1000, gid: 1001, mode: 0o644, mtime: 1_700_000_000 });
    expect(meta('odd/setuid')).toMatchObject({ uid: 0, mode: 0o4755 });
  });

  it('hardlinkMetadata: the hardlink entry\'s owner, mode and mtime win on the shared inode', async () => {
    await extractLayer(tarOf(entries()), target, { whiteouts: 'apply', hardlinkMetadata: true });
    expect(meta('odd/owned.txt')).toEqual({ uid: 5, gid: 6, mode: 0o600, mtime: 1_600_000_000 });
    expect(lstatSync(join(target, 'odd/hard')).ino).toBe(lstatSync(join(target, 'odd/owned.txt')).ino);
  });

  it('owner: every entry is owned by it (setuid kept), implied parents stay 0:0', async () => {
    await extractLayer(tarOf(entries()), target, { whiteouts: 'apply', hardlinkMetadata: true, owner: { uid: 77, gid: 88 } });
    for (const p of ['odd', 'odd/owned.txt', 'odd/setuid', 'implied/parent/f']) expect(meta(p), p).toMatchObject({ uid: 77, gid: 88 });
    expect(meta('odd/setuid').mode).toBe(0o4755);
    expect(meta('odd').mode).toBe(0o750);
    for (const p of ['implied', 'implied/parent']) expect(meta(p), p).toMatchObject({ uid: 0, gid: 0 });
  });
});
