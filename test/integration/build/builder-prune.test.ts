/**
 * `tsbuild builder prune`: removes step records and cache mounts (least recently used first,
 * `--filter until=`, `--keep-storage`), their blobs through the store's gc, keeps what images
 * and running builds use; a build running while the cache is pruned still succeeds.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStorageSize } from '../../../src/cli/commands/builder.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { TSBUILD_MAIN, runTsbuild, tsbuildOk } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli());
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

const ctxWith = (dockerfile: string) => {
  const ctx = tmp('tsbuild-bprune-ctx-');
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  return ctx;
};
const records = (root: string) => (existsSync(join(root, 'buildcache')) ? readdirSync(join(root, 'buildcache')).filter((n) => n.endsWith('.json')) : []);
const mounts = (root: string) => readdirSync(join(root, 'buildcache', 'mounts')).filter((n) => /^[0-9a-f]{64}$/.test(n));
const cachedCount = (stderr: string) => stderr.match(/CACHED/g)?.length ?? 0;

describe('builder prune flags', () => {
  it('--keep-storage sizes', () => {
    expect(parseStorageSize('0')).toBe(0);
    expect(parseStorageSize('512mb')).toBe(512 * 1024 ** 2);
    expect(parseStorageSize('10GB')).toBe(10 * 1024 ** 3);
    expect(parseStorageSize('1.5k')).toBe(1536);
    expect(() => parseStorageSize('lots')).toThrow('invalid --keep-storage');
  });
});

describe.skipIf(!!why)('tsbuild builder prune', () => {
  let root = '';
  beforeAll(async () => {
    root = tmp('tsbuild-bprune-');
    await tsbuildOk(['import', await busyboxRootfs(), BUSYBOX, '-c', 'CMD ["sh"]'], { root });
  }, 120_000);

  it('keeps entries of image layers without -a; removes dangling ones, cache mounts and their blobs; -a removes the rest', async () => {
    const kept = ctxWith(`FROM ${BUSYBOX}\nRUN echo a > /a\nRUN --mount=type=cache,target=/c echo x > /c/f && cp /c/f /copied\n`);
    const gone = ctxWith(`FROM ${BUSYBOX}\nRUN head -c 200000 /dev/urandom > /big\n`);
    await tsbuildOk(['build', '-t', 'localhost/bprune/kept', kept], { root });
    await tsbuildOk(['build', '-t', 'localhost/bprune/gone', gone], { root });
    await tsbuildOk(['rmi', 'localhost/bprune/gone'], { root });
    expect(mounts(root)).toHaveLength(1);

    const dry = await tsbuildOk(['builder', 'prune', '--dry-run', '--format', 'json'], { root });
    const plan = JSON.parse(dry.stdout) as { deleted: { kind: string; size: number }[]; reclaimedBytes: number };
    expect(plan.deleted.filter((d) => d.kind === 'step')).toHaveLength(1);
    expect(plan.deleted.filter((d) => d.kind === 'cache-mount')).toHaveLength(1);
    expect(plan.reclaimedBytes).toBeGreaterThan(200_000);
    expect(records(root)).toHaveLength(3);

    const r = await tsbuildOk(['builder', 'prune', '-f'], { root });
    expect(r.stdout).toMatch(/^Deleted build cache objects:\n(([0-9a-f]{64}|mount:[0-9a-f]{64})\n){2}\nTotal reclaimed space: 2\d\d(\.\d)?kB\n$/);
    expect(r.stdout).toMatch(/\nmount:[0-9a-f]{64}\n/);
    expect(records(root)).toHaveLength(2);
    expect(mounts(root)).toHaveLength(0);
    await tsbuildOk(['fsck'], { root });
    // the kept image's steps are still cached; the removed one runs again
    expect(cachedCount((await tsbuildOk(['build', '--progress=plain', '-t', 'localhost/bprune/kept', kept], { root })).stderr)).toBe(2);
    expect(cachedCount((await tsbuildOk(['build', '--progress=plain', gone], { root })).stderr)).toBe(0);

    await tsbuildOk(['builder', 'prune', '--all'], { root });
    expect(records(root)).toHaveLength(0);
    // the image keeps its layers; only the cache is gone
    expect((await tsbuildOk(['run', '--rm', 'localhost/bprune/kept', 'cat', '/a', '/copied'], { root })).stdout).toBe('a\nx\n');
    await tsbuildOk(['fsck'], { root });
    expect(cachedCount((await tsbuildOk(['build', '--progress=plain', '-t', 'localhost/bprune/kept', kept], { root })).stderr)).toBe(0);
  }, 180_000);

  it('--filter until= and --keep-storage remove the least recently used entries', async () => {
    const r = tmp('tsbuild-bprune-lru-');
    await tsbuildOk(['import', await busyboxRootfs(), BUSYBOX, '-c', 'CMD ["sh"]'], { root: r });
    const keyOf = new Map<string, string>();
    for (const n of ['old', 'mid', 'new']) {
      const before = new Set(records(r));
      await tsbuildOk(['build', ctxWith(`FROM ${BUSYBOX}\nRUN head -c 100000 /dev/urandom > /${n}\n`)], { root: r });
      keyOf.set(n, records(r).find((x) => !before.has(x))!);
    }
    const age = (n: string, hours: number) => {
      const t = new Date(Date.now() - hours * 3600_000);
      utimesSync(join(r, 'buildcache', keyOf.get(n)!), t, t);
    };
    age('old', 72);
    age('mid', 30);
    age('new', 1);
    const byFilter = await tsbuildOk(['builder', 'prune', '--filter', 'until=48h', '--format', 'json'], { root: r });
    expect((JSON.parse(byFilter.stdout) as { deleted: { id: string }[] }).deleted.map((d) => `${d.id}.json`)).toEqual([keyOf.get('old')]);
    // 150 kB to keep of ~200 kB: the least recently used (mid) goes, new stays
    const byStorage = await tsbuildOk(['builder', 'prune', '--keep-storage', '150k', '--format', 'json'], { root: r });
    expect((JSON.parse(byStorage.stdout) as { deleted: { id: string }[] }).deleted.map((d) => `${d.id}.json`)).toEqual([keyOf.get('mid')]);
    expect(records(r)).toContain(keyOf.get('new'));
    await tsbuildOk(['fsck'], { root: r });
    const bad = await runTsbuild(['builder', 'prune', '--filter', 'label=x'], { root: r });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('only until=DURATION is supported');
  }, 180_000);

  it('a build running during prune -a keeps its cached steps and completes intact', async () => {
    const ctx = ctxWith(`FROM ${BUSYBOX}\nRUN head -c 50000 /dev/urandom > /r\nARG N\nRUN sleep 3 && echo "$N" > /n\n`);
    await tsbuildOk(['build', '--build-arg', 'N=1', ctx], { root });
    const child = spawn(process.execPath, [TSBUILD_MAIN, '--root', root, 'build', '--progress=plain', '--build-arg', 'N=2', '-t', 'localhost/bprune/during', ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const running = new Promise<void>((resolve) => {
      child.stderr!.on('data', (c: Buffer) => {
        err += c.toString();
        if (/\[4\/4\] RUN sleep 3/.test(err)) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await Promise.race([running, exited]);
    const pruned = await tsbuildOk(['builder', 'prune', '--all', '--format', 'json'], { root });
    expect(await exited).toBe(0);
    expect(err).toContain('CACHED');
    // the cached step the running build used was kept (used after the build's lease began)
    const deleted = (JSON.parse(pruned.stdout) as { deleted: { id: string }[] }).deleted;
    expect(deleted.length).toBeGreaterThan(0);
    await tsbuildOk(['fsck'], { root });
    expect((await tsbuildOk(['run', '--rm', 'localhost/bprune/during', 'cat', '/n'], { root })).stdout).toBe('2\n');
    const next = await tsbuildOk(['build', '--progress=plain', '--build-arg', 'N=3', ctx], { root });
    expect(next.stderr).toMatch(/\[2\/4\] RUN head -c 50000[^\n]*\n#\d+ CACHED/);
  }, 180_000);
});
