/**
 * Builds of the testdata/build corpus on the offline busybox base through the runtime wiring,
 * asserting rootfs content, layers, config and history, and that nothing is left behind.
 */
import { cpSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError } from '../../../builder/exec/errors.js';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import { validateImage } from '../../../src/oci/validate.js';
import { buildUnavailable, CASES, layerEntries, leftovers, makeStore, runBuild, stepStates, unpackImage } from './harness.js';

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

async function buildCase(name: string, o: Parameters<typeof runBuild>[2] = {}) {
  return runBuild(root, store, { context: join(CASES, name), ...o });
}

async function rootfsOf(image: Parameters<typeof unpackImage>[0]): Promise<string> {
  const d = tmp('tsbuild-build-rootfs-');
  await unpackImage(image, d);
  return d;
}

describe.skipIf(!!why)('tsbuild build (busybox)', () => {
  it('RUN in shell, exec and heredoc form with the stage env, user, workdir and shell; metadata in the config', async () => {
    const { result, output } = await buildCase('run-basic');
    const img = result.image;
    await validateImage(img);
    const fs = await rootfsOf(img);
    expect(readFileSync(join(fs, 'greeting'), 'utf8')).toBe('hello world\n');
    expect(readFileSync(join(fs, 'exec'), 'utf8')).toBe('exec-form\n');
    expect(readFileSync(join(fs, 'heredoc'), 'utf8')).toBe('heredoc-line1\nheredoc-line2\n');
    expect(readFileSync(join(fs, 'pwd'), 'utf8')).toBe('/work/dir\n');
    expect(readFileSync(join(fs, 'uid'), 'utf8')).toBe('0\n');
    expect(readFileSync(join(fs, 'tmp/nobody-uid'), 'utf8')).toBe('65534\n');
    expect(readFileSync(join(fs, 'tmp/shell'), 'utf8')).toBe('shell-form via custom shell\n');
    expect(output).toBe('');
    const cfg = await img.config();
    expect(cfg.config?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello', 'PATH_EXTRA=/opt/bin']);
    expect(cfg.config?.User).toBe('nobody');
    expect(cfg.config?.WorkingDir).toBe('/work/dir');
    expect(cfg.config?.Cmd).toEqual(['sh', '-c', 'cat /greeting']);
    expect(cfg.config?.Labels).toEqual({ 'org.example.case': 'run-basic' });
    expect(cfg.config?.ExposedPorts).toEqual({ '8080/tcp': {} });
    expect(cfg.config?.StopSignal).toBe('SIGTERM');
    expect(cfg.config?.Shell).toEqual(['/bin/sh', '-ec']);
    // history as buildkit writes it; one non-empty history entry per layer
    const h = cfg.history ?? [];
    const by = h.map((x) => x.created_by);
    expect(by).toContain('RUN |1 WHO=world /bin/sh -c echo "$GREETING $WHO" > /greeting # buildkit');
    expect(by).toContain('ENV GREETING=hello PATH_EXTRA=/opt/bin');
    expect(h.find((x) => x.created_by === 'ENV GREETING=hello PATH_EXTRA=/opt/bin')?.empty_layer).toBe(true);
    expect(h.filter((x) => !x.empty_layer).length).toBe(cfg.rootfs.diff_ids.length);
    // no runtime-made files in RUN layers: /etc/hosts etc. and mount points stay out
    const layers = await img.layers();
    for (const l of layers.slice(1)) {
      const e = await layerEntries(l);
      for (const p of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'proc', 'sys', 'dev']) expect(e.has(p), p).toBe(false);
    }
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('COPY follows Docker destination rules, --chown (ids and names), --chmod, relative dests and heredocs', async () => {
    const { result } = await buildCase('copy-rules');
    await validateImage(result.image);
    const fs = await rootfsOf(result.image);
    const rd = (p: string) => readFileSync(join(fs, p), 'utf8');
    expect(rd('newfile')).toBe('file a\n');
    expect(rd('existing/a.txt')).toBe('file a\n');
    expect(rd('created/b.txt')).toBe('file b\n');
    expect(rd('multi/a.txt') + rd('multi/b.txt')).toBe('file a\nfile b\n');
    expect(rd('copied-dir/one')).toBe('in dir\n');
    expect(rd('copied-dir/sub/two')).toBe('deep\n');
    expect(rd('glob/a.txt') + rd('glob/b.txt')).toBe('file a\nfile b\n');
    expect(rd('rel/relative.txt')).toBe('file a\n');
    expect(rd('heredoc.txt')).toBe('made by a heredoc\n');
    const st = (p: string) => lstatSync(join(fs, p));
    expect([st('owned/a.txt').uid, st('owned/a.txt').gid]).toEqual([1000, 1001]);
    // parent dirs COPY creates belong to the --chown owner
    expect([st('owned').uid, st('owned').gid]).toEqual([1000, 1001]);
    // a name: uid and primary gid from the image's /etc/passwd
    expect([st('owned-by-name/one').uid, st('owned-by-name/one').gid]).toEqual([65534, 65534]);
    expect(st('bin/script').mode & 0o7777).toBe(0o750);
    expect(st('private').mode & 0o7777).toBe(0o600);
    // context files are owned by root without --chown
    expect([st('newfile').uid, st('newfile').gid]).toEqual([0, 0]);
    const cfg = await result.image.config();
    expect(cfg.history?.map((x) => x.created_by)).toContain('COPY a.txt /newfile # buildkit');
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('multi-stage: COPY --from stage name/index keeps ownership; FROM an earlier stage; unneeded stages are not built', async () => {
    const { result, events } = await buildCase('multistage');
    const fs = await rootfsOf(result.image);
    expect(readFileSync(join(fs, 'artifact'), 'utf8')).toBe('built\n');
    expect(readFileSync(join(fs, 'child-artifact'), 'utf8')).toBe('built\nchild\n');
    expect(readFileSync(join(fs, 'out-dir/artifact'), 'utf8')).toBe('built\n');
    expect([lstatSync(join(fs, 'artifact')).uid, lstatSync(join(fs, 'artifact')).gid]).toEqual([123, 456]);
    const names = events.filter((e) => e.kind === 'step').map((e) => (e as { name: string }).name);
    expect(names.some((n) => n.includes('must not run'))).toBe(false);
    expect(names.some((n) => n.startsWith('[build 2/2] RUN'))).toBe(true);
    // layers of the image are gzip; stages that only feed COPY --from keep theirs uncompressed
    for (const l of (await result.image.manifest()).layers) expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const { readdirSync: rd } = await import('node:fs');
    const records = rd(join(root, 'buildcache')).filter((n) => n.endsWith('.json')).map((n) => JSON.parse(readFileSync(join(root, 'buildcache', n), 'utf8')) as { layer?: { descriptor: { mediaType: string } } });
    expect(records.some((r) => r.layer?.descriptor.mediaType === 'application/vnd.oci.image.layer.v1.tar')).toBe(true);
  }, 60_000);

  it('ONBUILD triggers of a base run in the child (with the child context); HEALTHCHECK, VOLUME, ENTRYPOINT kept', async () => {
    const parent = await buildCase('onbuild/parent');
    const desc = await store.putImage(parent.result.image);
    await store.tag('localhost/test/onbuild-parent:latest', desc);
    const pc = await parent.result.image.config();
    expect(pc.config?.OnBuild).toEqual(['RUN echo triggered > /triggered', 'COPY data.txt /onbuild-data']);
    expect(pc.config?.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000 });
    expect(pc.config?.Volumes).toEqual({ '/vol': {} });
    const child = await buildCase('onbuild/child');
    const fs = await rootfsOf(child.result.image);
    expect(readFileSync(join(fs, 'seen'), 'utf8')).toBe('triggered\n');
    expect(readFileSync(join(fs, 'onbuild-data'), 'utf8')).toBe('child context file\n');
    const cc = await child.result.image.config();
    expect(cc.config?.OnBuild ?? null).toBeNull();
    expect(cc.config?.Entrypoint).toEqual(['/bin/sh', '-c']);
  }, 60_000);

  it('FROM scratch with COPY gives a one-layer image', async () => {
    const { result } = await buildCase('scratch');
    await validateImage(result.image);
    const layers = await result.image.layers();
    expect(layers.length).toBe(1);
    const e = await layerEntries(layers[0]!);
    expect([...e.keys()]).toEqual(['hello.txt']);
    expect((await result.image.config()).config?.Cmd).toEqual(['/hello.txt']);
  }, 60_000);

  it('whiteouts, opaque directories, hardlinks and setuid bits come from the overlay upper dir', async () => {
    const { result } = await buildCase('whiteouts');
    const layers = await result.image.layers();
    const second = await layerEntries(layers[2]!);
    expect(second.has('data/.wh.gone')).toBe(true);
    expect(second.has('opq/.wh..wh..opq')).toBe(true);
    expect(second.has('opq/new')).toBe(true);
    const third = await layerEntries(layers[3]!);
    const links = [third.get('h1')!, third.get('h2')!];
    expect(links.map((x) => x.type).sort()).toEqual(['file', 'hardlink']);
    expect(links.find((x) => x.type === 'file')!.mode & 0o7777).toBe(0o4755);
    const fs = await rootfsOf(result.image);
    expect(() => lstatSync(join(fs, 'data/gone'))).toThrow();
    expect(readFileSync(join(fs, 'data/keep/x'), 'utf8')).toBe('2\n');
    expect(() => lstatSync(join(fs, 'opq/old'))).toThrow();
    expect(readFileSync(join(fs, 'opq/new'), 'utf8')).toBe('new\n');
  }, 60_000);

  it('RUN --network=none has only loopback; the default is the host network', async () => {
    const { result } = await buildCase('network-none');
    const fs = await rootfsOf(result.image);
    expect(readFileSync(join(fs, 'net-none'), 'utf8').trim().split(/\s+/)).toEqual(['lo']);
    const host = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    expect(readFileSync(join(fs, 'net-default'), 'utf8').trim().split(/\s+/).sort()).toEqual(host);
  }, 60_000);

  it('independent stages run in parallel', async () => {
    const { result } = await buildCase('parallel', { noCache: true });
    const fs = await rootfsOf(result.image);
    const n = (p: string) => Number(readFileSync(join(fs, p), 'utf8').trim());
    // the two 1 s RUNs overlap in time
    expect(n('a-start') < n('b-end') && n('b-start') < n('a-end')).toBe(true);
  }, 60_000);

  it('a failing RUN: BuildError with the step, exit code and last output lines; nothing left behind', async () => {
    const err = await buildCase('fail-run').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    const e = err as BuildError;
    expect(e.code).toBe('RUN_FAILED');
    expect(e.processExitCode).toBe(3);
    expect(e.message).toContain('[3/4] RUN echo "about to fail"');
    expect(e.message).toContain('exited with code 3');
    expect(e.output).toEqual(expect.arrayContaining(['about to fail', 'last words']));
    expect(e.location?.line).toBe(3);
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('unknown base images, ADD --checksum of a local file and unknown targets fail clearly before running anything', async () => {
    const base = (await buildCase('missing-copy', { dockerfile: 'FROM localhost/test/nope:1\nRUN true\n' }).catch((e: unknown) => e)) as BuildError;
    expect(base).toBeInstanceOf(BuildError);
    expect(base.code).toBe('BASE_NOT_FOUND');
    expect(base.message).toContain('localhost/test/nope:1');
    const url = (await buildCase('missing-copy', { dockerfile: `FROM localhost/test/busybox:latest\nRUN touch /ran\nADD --checksum=sha256:${'0'.repeat(64)} x.tar.gz /x\n` }).catch((e: unknown) => e)) as BuildError;
    expect(url.code).toBe('INVALID_CHECKSUM');
    expect(url.message).toContain('x.tar.gz');
    expect(url.location?.line).toBe(3);
    const user = (await buildCase('missing-copy', { dockerfile: 'FROM localhost/test/busybox:latest\nUSER nosuchuser\nRUN true\n' }).catch((e: unknown) => e)) as BuildError;
    expect(user).toBeInstanceOf(BuildError);
    expect(user.message).toContain('[3/3] RUN true');
    expect(user.message).toContain('nosuchuser');
    const target = (await buildCase('multistage', { target: 'buld' }).catch((e: unknown) => e)) as Error;
    expect(target.message).toMatch(/buld/);
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('a missing COPY source names the path and .dockerignore', async () => {
    const err = (await buildCase('missing-copy').catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe('COPY_FAILED');
    expect(err.message).toContain('"/nothere.txt": not found');
    expect(err.message).toContain('.dockerignore');
    const ign = (await buildCase('dockerignore').catch((e: unknown) => e)) as BuildError;
    expect(ign.code).toBe('COPY_FAILED');
    expect(ign.message).toContain('"/secret.txt": not found');
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('cache: second build all CACHED with the same digest; mtime-only touch stays cached; a changed file rebuilds from its COPY on', async () => {
    const ctx = tmp('tsbuild-build-cachectx-');
    cpSync(join(CASES, 'cache'), ctx, { recursive: true });
    const first = await runBuild(root, store, { context: ctx });
    expect(stepStates(first.events).ran.length).toBe(4);
    const second = await runBuild(root, store, { context: ctx });
    expect(stepStates(second.events)).toEqual({ cached: stepStates(first.events).ran, ran: [] });
    expect(second.result.digest).toBe(first.result.digest);

    const t = new Date(Date.now() + 60_000);
    const { utimesSync } = await import('node:fs');
    utimesSync(join(ctx, 'app.txt'), t, t);
    const touched = await runBuild(root, store, { context: ctx });
    expect(stepStates(touched.events).ran).toEqual([]);
    expect(touched.result.digest).toBe(first.result.digest);

    writeFileSync(join(ctx, 'app.txt'), 'v2\n');
    const changed = await runBuild(root, store, { context: ctx });
    expect(stepStates(changed.events).cached).toEqual(['[2/5] RUN echo base-step > /base', '[3/5] COPY static.txt /static.txt']);
    expect(stepStates(changed.events).ran).toEqual(['[4/5] COPY app.txt /app.txt', '[5/5] RUN cat /app.txt > /derived']);
    const fs = await rootfsOf(changed.result.image);
    expect(readFileSync(join(fs, 'derived'), 'utf8')).toBe('v2\n');

    const nocache = await runBuild(root, store, { context: ctx, noCache: true });
    expect(stepStates(nocache.events).cached).toEqual([]);
    expect(stepStates(nocache.events).ran.length).toBe(4);
    // cache records and their gc roots live under the store root
    expect(statSync(join(root, 'buildcache')).isDirectory()).toBe(true);
  }, 120_000);

  it('SOURCE_DATE_EPOCH: two uncached builds give the same digest; created, history and new layer mtimes are clamped', async () => {
    const a = await buildCase('copy-rules', { noCache: true, sourceDateEpoch: 1_700_000_000 });
    const b = await buildCase('copy-rules', { noCache: true, sourceDateEpoch: 1_700_000_000 });
    expect(b.result.digest).toBe(a.result.digest);
    const cfg = await a.result.image.config();
    expect(cfg.created).toBe('2023-11-14T22:13:20Z');
    const own = (cfg.history ?? []).slice(1);
    expect(own.every((h) => h.created === '2023-11-14T22:13:20Z')).toBe(true);
    const layers = await a.result.image.layers();
    for (const l of layers.slice(1)) for (const e of (await layerEntries(l)).values()) expect(e.mtime).toBeLessThanOrEqual(1_700_000_000);
  }, 120_000);

  it('the build root is safe: COPY through a symlink pointing outside stays inside the root', async () => {
    const ctx = tmp('tsbuild-build-symctx-');
    writeFileSync(join(ctx, 'f'), 'x\n');
    const outside = tmp('tsbuild-build-outside-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM localhost/test/busybox:latest\nRUN ln -s ${outside} /escape\nCOPY f /escape/f\n`);
    const { result } = await runBuild(root, store, { context: ctx });
    expect(() => lstatSync(join(outside, 'f'))).toThrow();
    const fs = await rootfsOf(result.image);
    expect(readlinkSync(join(fs, 'escape'))).toBe(outside);
    expect(readFileSync(join(fs, outside, 'f'), 'utf8')).toBe('x\n');
  }, 60_000);
});

describe.skipIf(!!why)('tsbuild build: RUN --mount', () => {
  it('cache, tmpfs, bind (context, stage, rw) and secret mounts work and stay out of layers', async () => {
    const secret = Buffer.from('s3cr3t-value-123');
    const { result } = await buildCase('mounts', { secrets: new Map([['token', secret]]) });
    const fs = await rootfsOf(result.image);
    const rd = (p: string) => readFileSync(join(fs, p), 'utf8');
    expect(rd('seen2')).toMatch(/run1\nrun2\n$/);
    expect(rd('tmpfs-seen')).toBe('tmp\n');
    expect(rd('bind-seen')).toBe('bound file\n');
    expect(rd('stage-bind-seen')).toBe('tool-output\n');
    expect(rd('rw-seen')).toBe('scribble\n');
    expect(readFileSync(join(CASES, 'mounts/src/data.txt'), 'utf8')).toBe('bound file\n');
    expect(rd('secret-len').trim()).toBe(String(secret.length));
    expect(rd('secret-env')).toBe('has-env\n');
    // nothing of the mounts in any layer: no cache content, no secret, no mount points
    for (const l of (await result.image.layers()).slice(1)) {
      const e = await layerEntries(l);
      for (const p of ['var/cache/app/log', 'scratch', 'mnt', 'run/secrets/token', 'run/secrets', 'run']) expect(e.has(p), p).toBe(false);
      const tar = (await import('../../../src/util/streams.js')).readAll;
      expect((await tar(await l.uncompressed())).includes(secret)).toBe(false);
    }
    const cfg = await result.image.config();
    expect(JSON.stringify(cfg)).not.toContain('s3cr3t');
    // a missing required secret fails before running
    const err = (await buildCase('mounts', { dockerfile: 'FROM localhost/test/busybox:latest\nRUN --mount=type=secret,id=token,required=true true\n' }).catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toContain('secret token is required');
    expect(leftovers(root)).toEqual([]);
  }, 120_000);
});

describe.skipIf(!!why)('tsbuild build: cancellation and concurrency', () => {
  it('aborting a build kills the running RUN and leaves nothing behind', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = runBuild(root, store, { dockerfile: 'FROM localhost/test/busybox:latest\nRUN sleep 30\n', signal: ac.signal, noCache: true });
    setTimeout(() => ac.abort(new Error('test abort')), 1500);
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).code).toBe('CANCELED');
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('two builds of the same steps at once on one store both succeed with the same result', async () => {
    const df = 'FROM localhost/test/busybox:latest\nRUN echo concurrent > /c && sleep 0.3\n';
    const [a, b] = await Promise.all([runBuild(root, store, { dockerfile: df }), runBuild(root, store, { dockerfile: df })]);
    const fa = await rootfsOf(a.result.image);
    const fb = await rootfsOf(b.result.image);
    expect(readFileSync(join(fa, 'c'), 'utf8')).toBe('concurrent\n');
    expect(readFileSync(join(fb, 'c'), 'utf8')).toBe('concurrent\n');
    const again = await runBuild(root, store, { dockerfile: df });
    expect(stepStates(again.events).ran).toEqual([]);
    expect(leftovers(root)).toEqual([]);
  }, 60_000);
});
