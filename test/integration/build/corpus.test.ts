/**
 * The rest of the build corpus (testdata/build): each case is built on the offline busybox base
 * and its root filesystem and image config are asserted. Together with build.test.ts,
 * debian.test.ts and the differential tests this covers every instruction and flag the builder
 * supports.
 */
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Image } from '../../../src/oci/image.js';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import { REPO_ROOT } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX, CASES, leftovers, makeStore, runBuild, unpackImage, type RunBuildOptions } from './harness.js';

const why = buildUnavailable();
if (why) console.warn(`skip: ${why}`);

let root = '';
let store: ImageStore;
const temps: string[] = [];

beforeAll(async () => {
  if (why) return;
  ({ root, store } = await makeStore());
}, 60_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

async function buildCase(name: string, o: Omit<RunBuildOptions, 'context'> = {}): Promise<{ image: Image; fs: string; output: string }> {
  const r = await runBuild(root, store, { context: join(CASES, name), noCache: true, ...o });
  const fs = mkdtempSync(join(tmpdir(), 'tsbuild-corpus-fs-'));
  temps.push(fs);
  await unpackImage(r.result.image, fs);
  return { image: r.result.image, fs, output: r.output };
}

const read = (fs: string, p: string): string => readFileSync(join(fs, p), 'utf8');
const mode = (fs: string, p: string): number => lstatSync(join(fs, p)).mode & 0o7777;
const owner = (fs: string, p: string): string => {
  const st = lstatSync(join(fs, p));
  return `${st.uid}:${st.gid}`;
};
const ino = (fs: string, p: string): number => lstatSync(join(fs, p)).ino;
const exists = (fs: string, p: string): boolean => lstatSync(join(fs, p), { throwIfNoEntry: false }) !== undefined;

describe.skipIf(!!why)('build corpus', () => {
  it('metadata: LABEL, MAINTAINER, ENV forms, EXPOSE ranges, VOLUME, STOPSIGNAL, HEALTHCHECK flags, SHELL, USER, WORKDIR, ENTRYPOINT+CMD', async () => {
    const { image, fs, output } = await buildCase('metadata');
    const cfg = await image.config();
    const c = cfg.config!;
    expect(c.Labels).toEqual({ 'org.example.case': 'metadata', 'org.example.multi': 'a b', 'org.example.second': '2' });
    expect(cfg.author).toBe('Example Maintainer <maint@example.com>');
    expect(c.Env).toEqual(expect.arrayContaining(['ONE=1', 'TWO=two words', 'THREE=1-three']));
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} });
    expect(c.Volumes).toEqual({ '/data': {}, '/cache': {}, '/logs': {} });
    expect(c.StopSignal).toBe('SIGQUIT');
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'], Interval: 30e9, Timeout: 3e9, StartPeriod: 90e9, Retries: 3 });
    expect((c as { Shell?: string[] }).Shell).toEqual(['/bin/sh', '-x', '-c']);
    expect(c.User).toBe('1000:1000');
    expect(c.WorkingDir).toBe('/srv');
    expect(c.Entrypoint).toEqual(['/bin/sh', '-c']);
    expect(c.Cmd).toEqual(['echo $TWO']);
    expect(read(fs, 'three')).toBe('1-three\n');
    // SHELL -x traces the command on stderr, proving the custom shell ran it
    expect(output).toContain('+ echo 1-three');
    expect(owner(fs, 'srv')).toBe('1000:1000');
    expect(cfg.history!.map((h) => h.created_by)).toContain('STOPSIGNAL SIGQUIT');
  }, 120_000);

  it('arg-scoping: global ARGs in FROM, re-declared in a stage, --build-arg, no leaking between stages', async () => {
    const { image, fs } = await buildCase('arg-scoping', { buildArgs: { FLAVOUR: 'from-cli' } });
    expect(read(fs, 'first/before')).toBe('flavour=[]\n');
    expect(read(fs, 'first/after')).toBe('flavour=[from-cli]\n');
    expect(read(fs, 'first/local')).toBe('local-default local-default\n');
    expect(read(fs, 'other-stage')).toBe('local=[]\n');
    expect(read(fs, 'flavour')).toBe('flavour=[from-cli]\n');
    const c = (await image.config()).config!;
    expect((c.Env ?? []).some((e) => e.startsWith('FROM_ARG='))).toBe(false);
    // ARG values used by a RUN show in its history like buildkit's "|1 FLAVOUR=from-cli"
    expect((await image.config()).history!.some((h) => h.created_by?.startsWith('RUN |1 FLAVOUR=from-cli '))).toBe(true);
  }, 120_000);

  it('perms: setuid/setgid/sticky bits, chown of files and symlinks, COPY --chown/--chmod, WORKDIR owned by USER', async () => {
    const { fs } = await buildCase('perms');
    expect(mode(fs, 'p/setuid')).toBe(0o4755);
    expect(mode(fs, 'p/setgid')).toBe(0o2711);
    expect(mode(fs, 'p/sticky')).toBe(0o1777);
    expect([mode(fs, 'p/owned'), owner(fs, 'p/owned')]).toEqual([0o640, '1234:5678']);
    expect([readlinkSync(join(fs, 'p/link')), owner(fs, 'p/link')]).toEqual(['owned', '42:42']);
    expect([mode(fs, 'c/file.txt'), owner(fs, 'c/file.txt')]).toEqual([0o604, '1000:1001']);
    expect(owner(fs, 'c/dir/one')).toBe('65534:65534');
    expect(owner(fs, 'c/dir/sub/two')).toBe('65534:65534');
    expect(mode(fs, 'c/dir-chmod/sub')).toBe(0o755);
    expect(mode(fs, 'c/dir-chmod/one')).toBe(0o755);
    expect(owner(fs, 'home/nobody/work')).toBe('65534:65534');
    expect(owner(fs, 'home/nobody/work/made-by-nobody')).toBe('65534:65534');
    expect(mode(fs, 'home/nobody')).toBe(0o700);
  }, 120_000);

  it('copy-from-image: COPY --from an image reference onto scratch', async () => {
    const { image, fs } = await buildCase('copy-from-image');
    expect(readdirSync(fs).sort()).toEqual(['bin', 'etc']);
    expect(readdirSync(join(fs, 'etc')).sort()).toEqual(['group', 'passwd']);
    expect(mode(fs, 'bin/busybox') & 0o111).not.toBe(0);
    const c = (await image.config()).config!;
    expect(c.Cmd).toEqual(['/bin/busybox', 'echo', 'hi']);
    expect(c.Env).toEqual(['PATH=/bin']);
    expect(c.WorkingDir).toBe('/');
  }, 120_000);

  it('add-archives: ADD extracts local tar, gzip, bzip2 and xz archives (owners, modes, links kept); other files copied as they are', async () => {
    const { fs } = await buildCase('add-archives');
    for (const d of ['plain', 'gzip', 'bzip2', 'xz']) {
      expect(read(fs, `${d}/t/file`), d).toBe('content\n');
      expect(read(fs, `${d}/t/sub/deep`), d).toBe('deep\n');
      expect(mode(fs, `${d}/t/exec`), d).toBe(0o755);
      expect(owner(fs, `${d}/t/file`), d).toBe('1001:1002');
      expect(readlinkSync(join(fs, `${d}/t/link`)), d).toBe('file');
      expect(ino(fs, `${d}/t/hard`), d).toBe(ino(fs, `${d}/t/file`));
    }
    expect(read(fs, 'notes/notes.txt')).toBe('notes\n');
    expect(readFileSync(join(fs, 'single/single.gz')).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  }, 120_000);

  it('add-zstd: ADD extracts a zstd-compressed tar', async () => {
    const { fs } = await buildCase('add-zstd');
    expect(read(fs, 'zstd/t/file')).toBe('content\n');
    expect(owner(fs, 'zstd/t/sub/deep')).toBe('1001:1002');
  }, 120_000);

  it('dockerignore-rules: ** patterns, ! exceptions, last match wins, the Dockerfile itself ignorable', async () => {
    const { fs } = await buildCase('dockerignore-rules');
    const got: string[] = [];
    const walk = (d: string, rel: string): void => {
      for (const n of readdirSync(d).sort()) {
        const r = rel ? `${rel}/${n}` : n;
        if (lstatSync(join(d, n)).isDirectory()) walk(join(d, n), r);
        else got.push(r);
      }
    };
    walk(join(fs, 'ctx'), '');
    expect(got).toEqual(['.dockerignore', 'docs/README.md', 'keep/a.txt', 'logs/keep.log', 'top.txt']);
  }, 120_000);

  it('hardlinks: RUN hardlinks and COPY --from keep link groups', async () => {
    const { fs } = await buildCase('hardlinks');
    expect(ino(fs, 'copied/b')).toBe(ino(fs, 'copied/a'));
    expect(ino(fs, 'copied/sub/c')).toBe(ino(fs, 'copied/a'));
    expect(ino(fs, 'copied/solo-link')).toBe(ino(fs, 'copied/solo'));
    expect(ino(fs, 'copied/solo')).not.toBe(ino(fs, 'copied/a'));
  }, 120_000);

  it('heredocs: RUN heredocs (expanded, quoted, <<-, several per line, with args), COPY heredocs with --chmod', async () => {
    const { fs } = await buildCase('heredocs');
    expect(read(fs, 'expanded')).toBe('hello world\n');
    // a quoted delimiter stops the frontend's expansion; the shell running the script still sees ARG NAME
    expect(read(fs, 'quoted')).toBe('literal world\n');
    expect(read(fs, 'tabs')).toBe('tabs-stripped\n');
    expect(read(fs, 'a')).toBe('from a\n');
    expect(read(fs, 'b')).toBe('from b\n');
    expect(read(fs, 'args')).toBe('args: one two\n');
    expect(read(fs, 'docs/EOF1')).toBe('first file world\n');
    expect(read(fs, 'docs/EOF2')).toBe('second file\n');
    expect(mode(fs, 'usr/local/bin/greet')).toBe(0o755);
    expect(read(fs, 'usr/local/bin/greet')).toBe('#!/bin/sh\necho "greetings $1"\n');
    expect(read(fs, 'greeted')).toBe('greetings tester\n');
  }, 120_000);

  it('mount-types: cache (shared, private with mode/uid/gid), tmpfs with size, bind from context/stage/image, secret as file and env; none left in the layers', async () => {
    const { image, fs } = await buildCase('mount-types', { secrets: new Map([['token', Buffer.from('s3cr3t-value')]]) });
    expect(read(fs, 'cache-lines').trim()).toMatch(/^[1-9][0-9]*$/);
    expect(read(fs, 'cache-perm')).toBe('700 1000 1000\n');
    expect(Number(read(fs, 'tmpfs-size'))).toBe(1024);
    expect(read(fs, 'bind-ctx')).toBe('input\n');
    expect(read(fs, 'bind-stage')).toBe('from-stage\n');
    expect(Number(read(fs, 'bind-image'))).toBeGreaterThan(0);
    expect(read(fs, 'secret-bytes').trim()).toBe('12');
    expect(read(fs, 'secret-env')).toBe('ok\n');
    expect(read(fs, 'no-mounts-left')).toBe('clean\n');
    for (const p of ['cache', 'ctx', 'token', 't', 'd', 'be']) expect(exists(fs, p), p).toBe(false);
    // the secret value is in no layer
    for (const l of await image.layers()) {
      const chunks: Buffer[] = [];
      for await (const c of await l.uncompressed()) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).includes('s3cr3t-value')).toBe(false);
    }
    expect(leftovers(root)).toEqual([]);
  }, 120_000);

  it('examples/hello (the README demo app): two stages on busybox:demo, only the result shipped', async () => {
    await store.tag('docker.io/library/busybox:demo', (await store.resolve(BUSYBOX)).descriptor);
    const r = await runBuild(root, store, { context: join(REPO_ROOT, 'examples', 'hello') });
    const fs = mkdtempSync(join(tmpdir(), 'tsbuild-corpus-fs-'));
    temps.push(fs);
    await unpackImage(r.result.image, fs);
    expect(readdirSync(join(fs, 'app')).sort()).toEqual(['hello', 'share']);
    expect(readdirSync(join(fs, 'app/share')).sort()).toEqual(['SHA256SUMS', 'how.txt', 'why.txt']);
    expect(read(fs, 'app/share/how.txt')).toBe('BUILT IN TWO STAGES\n');
    expect(mode(fs, 'app/hello')).toBe(0o755);
    expect(exists(fs, 'src')).toBe(false);
    const c = (await r.result.image.config()).config!;
    expect([c.Cmd, c.User]).toEqual([['/app/hello'], 'nobody']);
    expect(c.Env).toContain('GREETING_DIR=/app/share');
  }, 120_000);

  it('copy-link-parents: COPY --link, --parents (with globs), --exclude', async () => {
    const { fs } = await buildCase('copy-link-parents');
    expect(read(fs, 'linked/one.txt')).toBe('one\n');
    expect(read(fs, 'parents/app/a/one.txt')).toBe('one\n');
    expect(read(fs, 'parents/app/b/two.txt')).toBe('two\n');
    expect(read(fs, 'parents-glob/app/a/one.txt')).toBe('one\n');
    expect(read(fs, 'parents-glob/app/b/two.txt')).toBe('two\n');
    expect(read(fs, 'excluded/a/one.txt')).toBe('one\n');
    expect(read(fs, 'excluded/top.txt')).toBe('top\n');
    expect(exists(fs, 'excluded/a/skip.tmp')).toBe(false);
    expect(exists(fs, 'excluded/b')).toBe(false);
    expect(mode(fs, 'linked-chmod')).toBe(0o600);
  }, 120_000);
});
