/**
 * Crash consistency: SIGKILL the CLI at seeded points during build, pull, push, load and run,
 * then check what a user would: `tsbuild fsck` is clean (no partial or corrupt blob is
 * visible), the same command succeeds afterwards with the same result, and what the killed
 * process left (overlay mounts, cgroups, container dirs, in-memory secrets, a still-running
 * RUN step) is gone once the next command has run its stale-container reaper.
 *
 * Kill points are fractions of a clean run's duration, drawn from a seeded generator:
 * CRASH_RUNS=N (default 2 per operation) and CRASH_SEED=S lengthen or replay a run.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { run, runTsbuild, tsbuildOk, TSBUILD_MAIN } from '../../helpers/tools.js';

const RUNS = Math.max(1, Number(process.env.CRASH_RUNS ?? 2));
const SEED = Number(process.env.CRASH_SEED ?? 20261125);

const why = firstReason(needRoot(), needOverlay(), needBuiltCli());
if (why) console.warn(`skip: ${why}`);
const whyRegistry = firstReason(why, registrySkipReason(), needTool('skopeo'));
if (whyRegistry && !why) console.warn(`skip (registry crash tests): ${whyRegistry}`);

/** mulberry32: a small seeded generator, so a failing kill point can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = seeded(SEED);

const temps: string[] = [];
function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

async function runOk(cmd: string, args: readonly string[]): Promise<{ stdout: string }> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Runs the CLI and SIGKILLs it after `ms`; resolves with whether the kill landed before it exited. */
function killAfter(root: string, args: readonly string[], ms: number): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSBUILD_MAIN, '--root', root, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
    let exited = false;
    const timer = setTimeout(() => {
      if (!exited) child.kill('SIGKILL');
    }, ms);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code });
    });
  });
}

/** Milliseconds a clean run of `args` takes (on a scratch copy of the work, by `fresh`). */
async function duration(fn: () => Promise<unknown>): Promise<number> {
  const t0 = Date.now();
  await fn();
  return Date.now() - t0;
}

/** Seeded kill points: fractions 0.15–0.9 of a clean run. */
function killPoints(total: number): number[] {
  return Array.from({ length: RUNS }, () => Math.max(30, Math.round(total * (0.15 + 0.75 * rand()))));
}

async function expectFsckClean(root: string, what: string): Promise<void> {
  const r = await runTsbuild(['fsck', '--format', 'json'], { root });
  expect(r.code, `fsck after a killed ${what}: ${r.stdout}${r.stderr}`).toBe(0);
  const res = JSON.parse(r.stdout) as { checked: number; bad: unknown[] };
  expect(res.bad, `fsck after a killed ${what}`).toEqual([]);
}

/** Ids of runtime containers (build steps, runs) with a directory under the store. */
function containerIds(root: string): string[] {
  const d = join(root, 'containers');
  return existsSync(d) ? readdirSync(d).filter((n) => /^[0-9a-f]{64}$/.test(n)) : [];
}

/** What is left of containers `ids`: mounts, cgroups, secret dirs, processes in their cgroups. */
function remainsOf(root: string, ids: readonly string[], secretDirs: readonly string[]): string[] {
  const out: string[] = [];
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of mountinfo.split('\n')) if (line.includes(root)) out.push(`mount ${line.split(' ')[4]}`);
  const cgroupDirs: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let ents: import('node:fs').Dirent[];
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (ids.includes(e.name)) cgroupDirs.push(p);
      else walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  for (const c of cgroupDirs) out.push(`cgroup ${c}`);
  for (const id of ids) if (existsSync(join(root, 'containers', id))) out.push(`container dir ${id.slice(0, 12)}`);
  for (const s of secretDirs) if (existsSync(s)) out.push(`secret dir ${s}`);
  return out;
}

/** Secret dirs a killed build recorded in its owner files. */
function recordedSecretDirs(root: string, ids: readonly string[]): string[] {
  const out: string[] = [];
  for (const id of ids) {
    try {
      const o = JSON.parse(readFileSync(join(root, 'containers', id, 'owner.json'), 'utf8')) as { secretDir?: string };
      if (o.secretDir) out.push(o.secretDir);
    } catch {
      /* no owner record yet */
    }
  }
  return out;
}

let root = '';
const BASE = 'localhost/crash/busybox:1';

beforeAll(async () => {
  if (why) return;
  root = tmp('tsbuild-crash-');
  await tsbuildOk(['import', await busyboxRootfs(), BASE, '-c', 'CMD ["sh"]'], { root });
}, 120_000);

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('SIGKILL during local commands', () => {
  it('build: killed mid-RUN and mid-commit, the store stays consistent, the rebuild succeeds, the reaper removes every leftover', async () => {
    const ctx = tmp('tsbuild-crash-ctx-');
    const secret = join(ctx, '..', `${ctx.split('/').pop()}.secret`);
    temps.push(secret);
    writeFileSync(secret, 'hunter2\n');
    writeFileSync(join(ctx, 'Dockerfile'), [
      `FROM ${BASE}`,
      'COPY data /data',
      // ~24 MB of incompressible data: the commit (tar + gzip + store) takes a while
      'RUN --mount=type=secret,id=tok head -c 24000000 /dev/urandom > /big && cat /run/secrets/tok > /dev/null && sleep 0.5',
      'RUN echo done > /done',
      '',
    ].join('\n'));
    mkdirSync(join(ctx, 'data'));
    for (let i = 0; i < 50; i++) writeFileSync(join(ctx, 'data', `f${i}`), `file ${i}\n`.repeat(100));
    const args = ['build', '--no-cache', '--secret', `id=tok,src=${secret}`, '-t', 'localhost/crash/app:1', '--progress', 'plain', ctx];
    const total = await duration(() => tsbuildOk(args, { root }));
    for (const ms of killPoints(total)) {
      const before = new Set(containerIds(root));
      const k = await killAfter(root, args, ms);
      const stale = containerIds(root).filter((id) => !before.has(id));
      const secrets = recordedSecretDirs(root, stale);
      await expectFsckClean(root, `build (killed=${k.killed} at ${ms} ms of ${total} ms, seed ${SEED})`);
      // the next identical build runs the reaper first, then succeeds
      await tsbuildOk(args, { root });
      expect(remainsOf(root, stale, secrets), `leftovers of the build killed at ${ms} ms`).toEqual([]);
      await expectFsckClean(root, 'rebuild');
    }
    const img = await tsbuildOk(['run', '--rm', 'localhost/crash/app:1', 'sh', '-c', 'cat /done; wc -c < /big; ls /data | wc -l'], { root });
    expect(img.stdout.split('\n').map((l) => l.trim())).toEqual(['done', '24000000', '50', '']);
  }, 600_000);

  it('load: killed mid-load, nothing partial is visible and the load succeeds afterwards', async () => {
    const r2 = tmp('tsbuild-crash-load-');
    const archive = join(tmp('tsbuild-crash-arc-'), 'app.tar');
    await tsbuildOk(['save', '-o', archive, 'localhost/crash/app:1'], { root });
    const total = await duration(() => tsbuildOk(['load', '-i', archive], { root: tmp('tsbuild-crash-load0-') }));
    for (const ms of killPoints(total)) {
      await killAfter(r2, ['load', '-i', archive], ms);
      await expectFsckClean(r2, `load (killed at ${ms} ms of ${total} ms, seed ${SEED})`);
      await tsbuildOk(['load', '-i', archive], { root: r2 });
      await expectFsckClean(r2, 'reload');
    }
    const a = await tsbuildOk(['inspect', '--format', '{{.Id}}', 'localhost/crash/app:1'], { root });
    const b = await tsbuildOk(['inspect', '--format', '{{.Id}}', 'localhost/crash/app:1'], { root: r2 });
    expect(b.stdout).toBe(a.stdout);
  }, 300_000);

  it('run: a killed foreground run leaves a container the next command reaps (process, mount, cgroup)', async () => {
    const args = ['run', '--rm', BASE, 'sh', '-c', 'sleep 30'];
    for (let i = 0; i < RUNS; i++) {
      const before = new Set(containerIds(root));
      const ms = 600 + Math.round(900 * rand());
      const k = await killAfter(root, args, ms);
      expect(k.killed, 'the run was still going when killed').toBe(true);
      const stale = containerIds(root).filter((id) => !before.has(id));
      await tsbuildOk(['run', '--rm', BASE, 'true'], { root });
      expect(remainsOf(root, stale, []), `leftovers of the run killed at ${ms} ms`).toEqual([]);
      const ps = await tsbuildOk(['ps', '-a'], { root });
      for (const id of stale) expect(ps.stdout).not.toContain(id.slice(0, 12));
    }
  }, 300_000);
});

describe.skipIf(!!whyRegistry)('SIGKILL during registry transfers', () => {
  let reg: TestRegistry | undefined;
  let img: RandomImage | undefined;
  let ref = '';
  let digest = '';

  beforeAll(async () => {
    if (whyRegistry) return;
    reg = await startRegistry();
    img = await randomImage({ layers: 3, layerBytes: 12 << 20 });
    ref = `${reg.host}/crash/random:1`;
    await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${img.dir}:latest`, `docker://${ref}`]);
    digest = img.manifest.digest;
  }, 300_000);

  afterAll(async () => {
    await reg?.stop();
    await img?.cleanup();
  });

  it('pull: killed mid-download, no partial blob is visible, the next pull resumes and gives the same digest', async () => {
    const r = tmp('tsbuild-crash-pull-');
    const total = await duration(() => tsbuildOk(['pull', '-q', ref], { root: tmp('tsbuild-crash-pull0-') }));
    for (const ms of killPoints(total)) {
      await killAfter(r, ['pull', '-q', ref], ms);
      await expectFsckClean(r, `pull (killed at ${ms} ms of ${total} ms, seed ${SEED})`);
      await tsbuildOk(['pull', '-q', ref], { root: r });
      const seen = await tsbuildOk(['inspect', '--format', '{{json .RepoDigests}}', ref], { root: r });
      expect(seen.stdout).toContain(digest);
      await expectFsckClean(r, 'repull');
      await tsbuildOk(['rmi', ref], { root: r });
    }
  }, 300_000);

  it('push: killed mid-upload, the next push completes and the registry serves the same digest', async () => {
    const r = tmp('tsbuild-crash-push-');
    await tsbuildOk(['pull', '-q', ref], { root: r });
    const dest = `${reg!.host}/crash/pushed`;
    const total = await duration(() => tsbuildOk(['push', ref, `${dest}:warm`], { root: r }));
    for (const [i, ms] of killPoints(total).entries()) {
      // a new repository each time, so blobs are really uploaded again (no HEAD dedupe)
      const target = `${dest}${i}:1`;
      await killAfter(r, ['push', ref, target], ms);
      await expectFsckClean(r, `push (killed at ${ms} ms of ${total} ms, seed ${SEED})`);
      const out = await tsbuildOk(['push', ref, target], { root: r });
      expect(out.stdout).toContain(digest);
      const seen = await runOk('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${target}`]);
      expect(seen.stdout.trim()).toBe(digest);
    }
  }, 300_000);
});
