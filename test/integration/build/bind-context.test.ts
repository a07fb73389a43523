/**
 * `RUN --mount=type=bind` without `from` sees the build context as BuildKit does: filtered by
 * .dockerignore (read-only and read-write binds, the whole context or a subdirectory).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import { BUSYBOX, buildUnavailable, leftovers, makeStore, runBuild, unpackImage } from './harness.js';

const why = buildUnavailable();
if (why) console.warn(`skip: ${why}`);

let root = '';
let store: ImageStore;
const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

beforeAll(async () => {
  if (why) return;
  ({ root, store } = await makeStore());
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('RUN --mount=type=bind from the context', () => {
  it('does not expose .dockerignored files (ro and rw, whole context and a subdirectory)', async () => {
    const ctx = tmp('tsbuild-bind-ctx-');
    mkdirSync(join(ctx, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(ctx, 'visible.txt'), 'v\n');
    writeFileSync(join(ctx, 'secret.env'), 'TOKEN=x\n');
    writeFileSync(join(ctx, 'sub', 'keep.txt'), 'k\n');
    writeFileSync(join(ctx, 'sub', 'drop.log'), 'd\n');
    writeFileSync(join(ctx, 'sub', 'deeper', 'x.log'), 'x\n');
    writeFileSync(join(ctx, '.dockerignore'), '*.env\n**/*.log\n');
    const df = [
      `FROM ${BUSYBOX}`,
      'RUN --mount=type=bind,target=/ctx cd /ctx && find . | sort > /ro.txt && cat visible.txt sub/keep.txt >> /ro.txt',
      'RUN --mount=type=bind,target=/ctx,rw cd /ctx && find . | sort > /rw.txt && echo changed > visible.txt && touch new',
      'RUN --mount=type=bind,source=sub,target=/sub find /sub | sort > /sub.txt',
    ].join('\n');
    const { result } = await runBuild(root, store, { context: ctx, dockerfile: df });
    const fs = tmp('tsbuild-bind-rootfs-');
    await unpackImage(result.image, fs);
    const tree = ['.', './.dockerignore', './sub', './sub/deeper', './sub/keep.txt', './visible.txt'];
    expect(readFileSync(join(fs, 'ro.txt'), 'utf8')).toBe(`${tree.join('\n')}\nv\nk\n`);
    expect(readFileSync(join(fs, 'rw.txt'), 'utf8')).toBe(`${tree.join('\n')}\n`);
    expect(readFileSync(join(fs, 'sub.txt'), 'utf8')).toBe('/sub\n/sub/deeper\n/sub/keep.txt\n');
    // writes through a rw bind never reach the context
    expect(readFileSync(join(ctx, 'visible.txt'), 'utf8')).toBe('v\n');
    expect(leftovers(root)).toEqual([]);
  }, 120_000);
});
