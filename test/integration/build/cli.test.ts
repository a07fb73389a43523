/**
 * `tsbuild build` end to end through the built CLI, and what peers say about a built image:
 * oci-image-tool validates it, skopeo inspects it, umoci unpacks it.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeLayout } from '../../../src/oci/layout/layout.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needTool } from '../../helpers/capabilities.js';
import { run, runTsbuild, tsbuildOk } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX, CASES, leftovers } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli());
if (why) console.warn(`skip: ${why}`);
const peers = { oit: needTool('oci-image-tool'), skopeo: needTool('skopeo'), umoci: needTool('umoci') };
for (const [k, v] of Object.entries(peers)) if (v) console.warn(`skip (${k}): ${v}`);

let root = '';
const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

beforeAll(async () => {
  if (why) return;
  root = tmp('tsbuild-build-cli-');
  await tsbuildOk(['import', await busyboxRootfs(), BUSYBOX, '-c', 'CMD ["sh"]'], { root });
}, 120_000);

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('tsbuild build (CLI)', () => {
  it('builds and tags; prints CACHED on the second run; -q and --iidfile give the image id', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    cpSync(join(CASES, 'cache'), ctx, { recursive: true });
    const first = await tsbuildOk(['build', '-t', 'localhost/cli/app:1', '--progress', 'plain', ctx], { root });
    expect(first.stderr).toContain('[2/5] RUN echo base-step > /base');
    expect(first.stderr).toContain('naming to localhost/cli/app:1 done');
    const second = await tsbuildOk(['build', '-t', 'localhost/cli/app:1', '--progress=plain', ctx], { root });
    expect(second.stderr.match(/CACHED/g)?.length).toBe(4);
    const iid = join(ctx, 'iid');
    const q = await tsbuildOk(['build', '-q', '--iidfile', iid, '-t', 'localhost/cli/app:2', ctx], { root });
    expect(q.stderr).toBe('');
    expect(q.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(readFileSync(iid, 'utf8')).toBe(q.stdout.trim());
    const images = await tsbuildOk(['images'], { root });
    expect(images.stdout).toContain(q.stdout.trim().slice(7, 19));
  }, 120_000);

  it('a context tar on stdin (-)', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    cpSync(join(CASES, 'scratch'), ctx, { recursive: true });
    const tar = await run('tar', ['-C', ctx, '-c', '-f', join(ctx, '..', `${ctx.split('/').pop()}.tar`), '.']);
    expect(tar.code).toBe(0);
    const input = readFileSync(join(ctx, '..', `${ctx.split('/').pop()}.tar`));
    rmSync(join(ctx, '..', `${ctx.split('/').pop()}.tar`));
    await tsbuildOk(['build', '-t', 'localhost/cli/stdin', '-'], { root, input });
    const inspect = await tsbuildOk(['inspect', 'localhost/cli/stdin'], { root });
    expect(inspect.stdout).toContain('/hello.txt');
  }, 120_000);

  it('-f, --target and --build-arg', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    writeFileSync(join(ctx, 'Build.df'), `FROM ${BUSYBOX} AS one\nARG WHAT=default\nRUN echo "$WHAT" > /what\nFROM one AS two\nRUN exit 1\n`);
    await tsbuildOk(['build', '-f', join(ctx, 'Build.df'), '--target', 'one', '--build-arg', 'WHAT=given', '-t', 'localhost/cli/target', ctx], { root });
    const out = await tsbuildOk(['run', '--rm', 'localhost/cli/target', 'cat', '/what'], { root });
    expect(out.stdout).toBe('given\n');
  }, 120_000);

  it('--label, --metadata-file and --platform', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nLABEL a=from-dockerfile b=kept\n`);
    const meta = join(ctx, 'meta.json');
    await tsbuildOk(['build', '--label', 'a=from-flag', '--label', 'c=3', '--metadata-file', meta, '-t', 'localhost/cli/labels', ctx], { root });
    const m = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, unknown>;
    expect(m['image.name']).toBe('localhost/cli/labels:latest');
    const store = await ImageStore.open(root);
    const rec = await store.resolve('localhost/cli/labels');
    expect(m['containerimage.digest']).toBe(rec.descriptor.digest);
    const { image } = await store.imageFor('localhost/cli/labels');
    expect((await image.config()).config?.Labels).toEqual({ a: 'from-flag', b: 'kept', c: '3' });
    expect(m['containerimage.config.digest']).toBe((await image.manifest()).config.digest);
    const bad = await runTsbuild(['build', '--platform', 'linux/amd64,linux/arm64', ctx], { root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('multi-platform builds are not supported');
  }, 120_000);

  it('--debug-cache explains misses; --no-cache-filter skips the cache for a stage only', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    writeFileSync(join(ctx, 'f.txt'), 'one');
    const df = (cmd: string) => writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX} AS a\nRUN echo a > /a\nFROM ${BUSYBOX}\nCOPY f.txt /f.txt\nRUN ${cmd}\nCOPY --from=a /a /a\n`);
    df('echo one > /one');
    await tsbuildOk(['build', ctx], { root });
    writeFileSync(join(ctx, 'f.txt'), 'two');
    df('echo two > /two');
    const r = await tsbuildOk(['build', '--debug-cache', '--progress=plain', ctx], { root });
    expect(r.stderr).toMatch(/cache miss: input content changed: [0-9a-f]{12} -> [0-9a-f]{12}/);
    expect(r.stderr).toContain('cache miss: an earlier step changed; args: ["/bin/sh","-c","echo one > /one"] -> ["/bin/sh","-c","echo two > /two"]');
    const f = await tsbuildOk(['build', '--no-cache-filter', 'a', '--progress=plain', ctx], { root });
    const lines = f.stderr.split('\n');
    const stateOf = (step: string) => {
      const n = lines.find((l) => l.includes(step))!.split(' ')[0]!;
      return lines.some((l) => l === `${n} CACHED`) ? 'cached' : 'ran';
    };
    expect(stateOf('[a 2/2] RUN echo a > /a')).toBe('ran');
    expect(stateOf('[stage-1 2/4] COPY f.txt /f.txt')).toBe('cached');
  }, 120_000);

  it('--compression zstd gives zstd layers (with their own cache records); -f - reads the Dockerfile from stdin', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    const input = `FROM ${BUSYBOX}\nRUN echo zz > /zz\n`;
    await tsbuildOk(['build', '-f', '-', '--compression', 'zstd,level=5', '-t', 'localhost/cli/zstd', ctx], { root, input });
    const store = await ImageStore.open(root);
    const { image } = await store.imageFor('localhost/cli/zstd');
    const m = await image.manifest();
    expect(m.layers.at(-1)!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const again = await tsbuildOk(['build', '-f', '-', '--compression', 'zstd', '--progress=plain', '-t', 'localhost/cli/zstd', ctx], { root, input });
    expect(again.stderr).toContain('CACHED');
    await tsbuildOk(['build', '-f', '-', '-t', 'localhost/cli/gz', ctx], { root, input });
    const gz = await (await store.imageFor('localhost/cli/gz')).image.manifest();
    expect(gz.layers.at(-1)!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const out = await tsbuildOk(['run', '--rm', 'localhost/cli/zstd', 'cat', '/zz'], { root });
    expect(out.stdout).toBe('zz\n');
    expect((await runTsbuild(['build', '--compression', 'lz4', ctx], { root })).code).toBe(2);
  }, 120_000);

  it('a failing RUN exits non-zero, shows the step, exit code and output, tags nothing and leaves nothing behind', async () => {
    const r = await runTsbuild(['build', '-t', 'localhost/cli/fail', '--progress', 'plain', join(CASES, 'fail-run')], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('[3/4] RUN echo "about to fail"');
    expect(r.stderr).toContain('exited with code 3');
    expect(r.stderr).toContain('last words');
    expect(r.stderr).toMatch(/^#\d+ ERROR$/m);
    const badTag = await runTsbuild(['build', '-t', 'Bad Tag!', join(CASES, 'fail-run')], { root });
    expect(badTag.code).toBe(2);
    expect(badTag.stderr).not.toContain('about to fail');
    expect((await tsbuildOk(['images'], { root })).stdout).not.toContain('localhost/cli/fail');
    expect(leftovers(root, { cgroupParent: 'tsbuild-build', secretsPrefix: 'tsbuild-secrets-' })).toEqual([]);
    const bad = await runTsbuild(['build', '--progress', 'bogus', join(CASES, 'fail-run')], { root });
    expect(bad.code).toBe(2);
  }, 120_000);

  it('prune keeps layers the build cache refers to', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nRUN echo kept-by-cache > /k\n`);
    await tsbuildOk(['build', ctx], { root }); // untagged: only the cache refers to the layer
    const store = await ImageStore.open(root);
    await store.gc();
    const again = await tsbuildOk(['build', '--progress=plain', '-t', 'localhost/cli/kept', ctx], { root });
    expect(again.stderr).toContain('CACHED');
    const out = await tsbuildOk(['run', '--rm', 'localhost/cli/kept', 'cat', '/k'], { root });
    expect(out.stdout).toBe('kept-by-cache\n');
  }, 120_000);

  it('peers accept a built image: oci-image-tool validate, skopeo inspect, umoci unpack', async () => {
    const r = await tsbuildOk(['build', '-t', 'localhost/cli/peers:1', join(CASES, 'copy-rules')], { root });
    void r;
    const store = await ImageStore.open(root);
    const rec = await store.resolve('localhost/cli/peers:1');
    const layout = tmp('tsbuild-build-layout-');
    await writeLayout(layout, store.content, [{ descriptor: rec.descriptor, names: ['localhost/cli/peers:1'] }]);
    if (!peers.oit) {
      const v = await run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=1', layout]);
      expect(v.stdout + v.stderr).toContain('Validation succeeded');
    }
    if (!peers.skopeo) {
      const s = await run('skopeo', ['inspect', `oci:${layout}:1`]);
      expect(s.code).toBe(0);
      const j = JSON.parse(s.stdout) as { Digest: string; Layers: string[] };
      expect(j.Digest).toBe(rec.descriptor.digest);
    }
    if (!peers.umoci) {
      const bundle = join(tmp('tsbuild-build-umoci-'), 'b');
      const u = await run('umoci', ['unpack', '--image', `${layout}:1`, bundle]);
      expect(u.code, u.stderr).toBe(0);
      expect(readFileSync(join(bundle, 'rootfs/existing/a.txt'), 'utf8')).toBe('file a\n');
      expect(existsSync(join(bundle, 'rootfs/heredoc.txt'))).toBe(true);
    }
  }, 120_000);

  it('--output type=oci (archive and layout dir), docker, local and tar; --secret from a file and the environment', async () => {
    const ctx = tmp('tsbuild-build-cli-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nRUN --mount=type=secret,id=a --mount=type=secret,id=b,env=B cat /run/secrets/a > /a && echo "$B" > /b\n`);
    writeFileSync(join(ctx, 'a.txt'), 'from-file');
    const out = tmp('tsbuild-build-out-');
    const sec = ['--secret', `id=a,src=${join(ctx, 'a.txt')}`, '--secret', 'id=b,env=MY_B'];
    const env = { env: { MY_B: 'from-env' } };
    await tsbuildOk(['build', ...sec, '-t', 'localhost/cli/out:1', '--output', `type=oci,dest=${join(out, 'oci.tar')}`, ctx], { root, ...env });
    await tsbuildOk(['build', ...sec, '--output', `type=oci,tar=false,dest=${join(out, 'layout')}`, '-t', 'localhost/cli/out:1', ctx], { root, ...env });
    await tsbuildOk(['build', ...sec, '--output', `type=docker,dest=${join(out, 'docker.tar')}`, '-t', 'localhost/cli/out:1', ctx], { root, ...env });
    await tsbuildOk(['build', ...sec, '--output', `type=local,dest=${join(out, 'rootfs')}`, ctx], { root, ...env });
    await tsbuildOk(['build', ...sec, '--output', `type=tar,dest=${join(out, 'rootfs.tar')}`, ctx], { root, ...env });
    expect(readFileSync(join(out, 'rootfs/a'), 'utf8')).toBe('from-file');
    expect(readFileSync(join(out, 'rootfs/b'), 'utf8')).toBe('from-env\n');
    const list = await run('tar', ['-tf', join(out, 'rootfs.tar')]);
    expect(list.stdout.split('\n')).toEqual(expect.arrayContaining(['a', 'b', 'bin/busybox']));
    // outputs other than image tag nothing in the store
    expect((await tsbuildOk(['images'], { root })).stdout).not.toContain('localhost/cli/out');
    if (!peers.skopeo) {
      for (const ref of [`oci-archive:${join(out, 'oci.tar')}:1`, `oci:${join(out, 'layout')}:1`, `docker-archive:${join(out, 'docker.tar')}`]) {
        const r = await run('skopeo', ['inspect', ref]);
        expect(r.code, `${ref}: ${r.stderr}`).toBe(0);
      }
    }
    const bad = await runTsbuild(['build', '--output', 'type=bogus,dest=x', ctx], { root });
    expect(bad.code).toBe(2);
    const missing = await runTsbuild(['build', '--secret', 'id=b,env=NOT_SET_ANYWHERE', ctx], { root });
    expect(missing.code).toBe(2);
  }, 120_000);
});
