/**
 * Four builds and two pushes at once on one store: all succeed, the store stays consistent
 * (fsck), every result is right, and the base layer they all need is unpacked once (the
 * snapshot store's cross-process lock), which the test sees by watching the snapshot
 * directory for unpackers' temp dirs while the builds run.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { run, tsbuildOk, TSBUILD_MAIN } from '../../helpers/tools.js';

const why = firstReason(needRoot(), needOverlay(), needBuiltCli(), registrySkipReason(), needTool('skopeo'));
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** Runs the CLI to completion without throwing; keeps both outputs. */
function cli(root: string, args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSBUILD_MAIN, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

let reg: TestRegistry | undefined;
afterAll(async () => {
  await reg?.stop();
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('concurrent builds and pushes on one store', () => {
  let root = '';
  const BIG = 'localhost/conc/bigbase:1';
  const SMALL = 'localhost/conc/busybox:1';

  beforeAll(async () => {
    reg = await startRegistry();
    root = tmp('tsbuild-conc-');
    // the big base is built in another store and loaded here, so its layer is not unpacked yet
    const other = tmp('tsbuild-conc-other-');
    await tsbuildOk(['import', await busyboxRootfs(), SMALL, '-c', 'CMD ["sh"]'], { root: other });
    const ctx = tmp('tsbuild-conc-base-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${SMALL}\nRUN head -c 40000000 /dev/urandom > /big\n`);
    await tsbuildOk(['build', '-q', '-t', BIG, ctx], { root: other });
    const archive = join(tmp('tsbuild-conc-arc-'), 'base.tar');
    await tsbuildOk(['save', '-o', archive, BIG, SMALL], { root: other });
    await tsbuildOk(['load', '-i', archive], { root });
  }, 300_000);

  it('4 builds + 2 pushes: all succeed, results right, fsck clean, the shared base layer unpacked once', async () => {
    const snapshots = join(root, 'snapshots');
    const seenTmp = new Set<string>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        if (existsSync(snapshots)) for (const n of readdirSync(snapshots)) if (n.startsWith('.tmp-')) seenTmp.add(n);
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const contexts = [0, 1, 2, 3].map((i) => {
      const ctx = tmp(`tsbuild-conc-ctx${i}-`);
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BIG}\nRUN echo build-${i} > /which && wc -c < /big > /size\nCOPY f /f\n`);
      writeFileSync(join(ctx, 'f'), `context ${i}\n`);
      return ctx;
    });
    const jobs = [
      ...contexts.map((ctx, i) => cli(root, ['build', '--progress', 'plain', '-t', `localhost/conc/app:${i}`, ctx])),
      cli(root, ['push', BIG, `${reg!.host}/conc/big:1`]),
      cli(root, ['push', SMALL, `${reg!.host}/conc/small:1`]),
    ];
    const results = await Promise.all(jobs);
    polling = false;
    await poll;
    for (const [i, r] of results.entries()) expect(r.code, `job ${i}: ${r.out}`).toBe(0);

    // the base's big layer: one unpacker temp dir at most (0 if the poll missed it), never one per build
    const diffIds = JSON.parse((await tsbuildOk(['inspect', '--format', '{{json .RootFS.Layers}}', BIG], { root })).stdout) as string[];
    const big = diffIds[diffIds.length - 1]!.slice(-12); // unpackers name temp dirs by the last 12 hex digits
    const unpackers = [...seenTmp].filter((n) => n.startsWith(`.tmp-${big}-`));
    expect(unpackers.length, `unpackers of layer ${big}: ${unpackers.join(', ')}`).toBeLessThanOrEqual(1);
    expect(readdirSync(snapshots).filter((n) => n.startsWith('.')), 'temp dirs or locks left in snapshots/').toEqual([]);

    const fsck = await tsbuildOk(['fsck', '--format', 'json'], { root });
    expect((JSON.parse(fsck.stdout) as { bad: unknown[] }).bad).toEqual([]);
    for (const i of [0, 1, 2, 3]) {
      const r = await tsbuildOk(['run', '--rm', `localhost/conc/app:${i}`, 'cat', '/which', '/size', '/f'], { root });
      expect(r.stdout.split('\n').map((l) => l.trim())).toEqual([`build-${i}`, '40000000', `context ${i}`, '']);
    }
    for (const [local, remote] of [[BIG, 'conc/big:1'], [SMALL, 'conc/small:1']] as const) {
      const want = JSON.parse((await tsbuildOk(['inspect', '--format', '{{json .RepoDigests}}', local], { root })).stdout) as string[];
      const seen = await run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${reg!.host}/${remote}`]);
      expect(seen.code, seen.stderr).toBe(0);
      expect(want.map((d) => d.split('@')[1])).toContain(seen.stdout.trim());
    }
  }, 600_000);
});
