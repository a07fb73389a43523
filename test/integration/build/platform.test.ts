/**
 * `build --platform` for a platform other than the host's (metadata-only builds carry it in the
 * config; RUN needs a binfmt_misc emulator and fails clearly without one) and
 * `--progress=rawjson` (BuildKit's SolveStatus JSON lines).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binfmtMissing } from '../../../src/cli/wiring/build-runtime.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { runTsbuild, tsbuildOk } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli());
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
const foreign = process.arch === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' };
const foreignName = `${foreign.os}/${foreign.architecture}`;
const hostName = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe('binfmt_misc detection', () => {
  it('needs an enabled handler named after the qemu architecture', () => {
    const dir = tmp('tsbuild-binfmt-');
    expect(binfmtMissing({ os: 'linux', architecture: 'riscv64' }, join(dir, 'absent'))).toBe('no emulator (binfmt_misc is not mounted)');
    writeFileSync(join(dir, 'status'), 'enabled\n');
    writeFileSync(join(dir, 'register'), '');
    expect(binfmtMissing({ os: 'linux', architecture: 'riscv64' }, dir)).toBe('no emulator (no binfmt_misc handler for riscv64)');
    writeFileSync(join(dir, 'qemu-riscv64'), 'disabled\ninterpreter /usr/bin/qemu-riscv64-static\n');
    expect(binfmtMissing({ os: 'linux', architecture: 'riscv64' }, dir)).toContain('no binfmt_misc handler');
    writeFileSync(join(dir, 'qemu-riscv64'), 'enabled\ninterpreter /usr/bin/qemu-riscv64-static\nflags: F\n');
    expect(binfmtMissing({ os: 'linux', architecture: 'riscv64' }, dir)).toBeUndefined();
    expect(binfmtMissing({ os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch }, dir)).toBeUndefined();
    expect(binfmtMissing({ os: 'windows', architecture: 'amd64' }, dir)).toContain('not a Linux platform');
  });
});

describe.skipIf(!!why)('build --platform and --progress=rawjson', () => {
  let root = '';
  beforeAll(async () => {
    root = tmp('tsbuild-build-platform-');
    await tsbuildOk(['import', await busyboxRootfs(), BUSYBOX, '-c', 'CMD ["sh"]'], { root });
  }, 120_000);

  it('a metadata-only build for another platform carries it in the config', async () => {
    const ctx = tmp('tsbuild-build-platform-ctx-');
    writeFileSync(join(ctx, 'a.txt'), 'a\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nARG TARGETPLATFORM TARGETARCH\nCOPY a.txt /a.txt\nLABEL target=$TARGETPLATFORM arch=$TARGETARCH\nCMD ["/a.txt"]\n');
    await tsbuildOk(['build', '--platform', foreignName, '-t', 'localhost/platform/meta', ctx], { root });
    const store = await ImageStore.open(root);
    const { image } = await store.imageFor('localhost/platform/meta', foreign);
    const cfg = await image.config();
    expect({ os: cfg.os, architecture: cfg.architecture }).toEqual(foreign);
    expect(cfg.config?.Labels).toEqual({ target: foreignName, arch: foreign.architecture });
    // a base of the host's platform is used with BuildKit's warning, the image labelled with the target
    const ctx2 = tmp('tsbuild-build-platform-ctx-');
    writeFileSync(join(ctx2, 'Dockerfile'), `FROM ${BUSYBOX}\nENV X=1\n`);
    const warned = await tsbuildOk(['build', '--progress=plain', '--platform', foreignName, '-t', 'localhost/platform/based', ctx2], { root });
    expect(warned.stderr).toContain(`InvalidBaseImagePlatform: Base image ${BUSYBOX} was pulled with platform "${hostName}", expected "${foreignName}"`);
    const based = await (await store.imageFor('localhost/platform/based', foreign)).image.config();
    expect(based.architecture).toBe(foreign.architecture);
  }, 120_000);

  const emulated = !binfmtMissing(foreign, '/proc/sys/fs/binfmt_misc');
  if (emulated) console.warn(`skip (RUN without emulator): this host has a binfmt_misc handler for ${foreignName}`);
  it.skipIf(emulated)('a RUN for another platform fails before anything runs when there is no emulator; nothing tagged', async () => {
    const ctx = tmp('tsbuild-build-platform-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nENV X=1\nRUN echo hi\n`);
    const r = await runTsbuild(['build', '--progress=plain', '--platform', foreignName, '-t', 'localhost/platform/run', ctx], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`RUN echo hi: cannot run ${foreignName} steps on ${hostName}: no emulator`);
    expect(r.stderr).not.toContain('#3 RUN');
    const images = (await tsbuildOk(['images'], { root })).stdout;
    expect(images).not.toContain('localhost/platform/run');
  }, 120_000);

  it('--progress=rawjson prints SolveStatus JSON lines: vertexes, cached vertexes, logs, export statuses', async () => {
    const ctx = tmp('tsbuild-build-platform-ctx-');
    mkdirSync(join(ctx, 'd'));
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nRUN echo out-line && echo err-line >&2\n`);
    const first = await tsbuildOk(['build', '--progress=rawjson', '-t', 'localhost/platform/json', ctx], { root });
    const lines = first.stderr.trim().split('\n').map((l) => JSON.parse(l) as { vertexes?: Record<string, unknown>[]; statuses?: Record<string, unknown>[]; logs?: Record<string, unknown>[] });
    const vertexes = lines.flatMap((l) => l.vertexes ?? []);
    const run = vertexes.filter((v) => v['name'] === '[2/2] RUN echo out-line && echo err-line >&2');
    expect(run.length).toBe(2);
    expect(run[0]).toMatchObject({ digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), started: expect.any(String) });
    expect(run[1]).toMatchObject({ digest: run[0]!['digest'], started: expect.any(String), completed: expect.any(String) });
    const logs = lines.flatMap((l) => l.logs ?? []).filter((g) => g['vertex'] === run[0]!['digest']);
    const text = (stream: number) => logs.filter((g) => g['stream'] === stream).map((g) => Buffer.from(String(g['data']), 'base64').toString()).join('');
    expect(text(1)).toBe('out-line\n');
    expect(text(2)).toBe('err-line\n');
    expect(Number.isNaN(Date.parse(String(logs[0]!['timestamp'])))).toBe(false);
    const statuses = lines.flatMap((l) => l.statuses ?? []);
    expect(statuses.map((s) => s['name'])).toEqual(expect.arrayContaining([expect.stringMatching(/^writing image sha256:[0-9a-f]{64}$/), 'naming to localhost/platform/json:latest']));
    const exportV = vertexes.filter((v) => v['name'] === 'exporting to image');
    expect(exportV.at(-1)).toMatchObject({ completed: expect.any(String) });
    expect(statuses[0]!['vertex']).toBe(exportV[0]!['digest']);

    const second = await tsbuildOk(['build', '--progress=rawjson', '-t', 'localhost/platform/json', ctx], { root });
    const cached = second.stderr.trim().split('\n').flatMap((l) => (JSON.parse(l) as { vertexes?: Record<string, unknown>[] }).vertexes ?? []).filter((v) => v['cached'] === true);
    expect(cached.map((v) => v['name'])).toEqual(['[2/2] RUN echo out-line && echo err-line >&2']);
    expect(cached[0]!['digest']).toBe(run[0]!['digest']);
  }, 120_000);
});
