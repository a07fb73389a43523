import { chmodSync, chownSync, cpSync, createWriteStream, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { REPO_ROOT, run, runTsbuild, TSBUILD_MAIN, tsbuildOk } from '../../helpers/tools.js';
import { TarWriter } from '../../../src/oci/tar/writer.js';

const why = firstReason(
  needRoot(),
  needOverlay(),
  needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
  needTool('tar'),
  existsSync(TSBUILD_MAIN) ? undefined : 'the CLI is not built (npm run build)',
  existsSync(join(REPO_ROOT, 'native/build/tsbuild-helper')) ? undefined : 'native/build is not built (make -C native)',
);
if (why) console.warn(`skip: ${why}`);

const IMG = 'localhost/cp/busybox:latest';

/** path → "type mode [uid:gid] content-or-target" for every entry under dir. */
function tree(dir: string, owners = false): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      const own = owners ? ` ${st.uid}:${st.gid}` : '';
      const mode = (st.mode & 0o7777).toString(8);
      const rel = relative(dir, p);
      if (st.isSymbolicLink()) out[rel] = `link${own} -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode}${own}`;
        walk(p);
      } else out[rel] = `file ${mode}${own} ${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

describe.skipIf(!!why)('containers: cp in and out (docker cp rules; CVE-2019-14271 class)', () => {
  let root = '';
  let work = '';
  const parent = `tsbuild-cp-${process.pid}`;
  /** A file name no host path has: what a escape would create. */
  const marker = `tsbuild-cp-escape-${process.pid}`;
  const ts = (...a: string[]) => runTsbuild(a, { root });
  const ok = async (...a: string[]) => (await tsbuildOk(a, { root })).stdout;
  const runD = async (...a: string[]) => (await ok('run', '-d', '--cgroup-parent', parent, ...a)).trim();
  const sh = (cmd: string, input?: Buffer) => run('sh', ['-c', cmd], { ...(input ? { input } : {}), env: { ROOT: root, TSBUILD: `${process.execPath} ${TSBUILD_MAIN} --root ${root}` } });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-cp-'));
    work = mkdtempSync(join(tmpdir(), 'tsbuild-cp-work-'));
    const rootfs = join(work, 'rootfs');
    cpSync(await busyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(rootfs, 'etc', 'shadow'), 'container-shadow\n');
    mkdirSync(join(rootfs, 'd'));
    symlinkSync('/etc/shadow', join(rootfs, 'd', 'shadow'));
    symlinkSync('/etc', join(rootfs, 'd', 'hostetc'));
    symlinkSync('../../../../../..', join(rootfs, 'd', 'up'));
    await tsbuildOk(['import', rootfs, IMG, '-c', 'CMD ["sh"]'], { root });
  });

  const leftovers = (): string[] => {
    const out: string[] = [];
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(root)) out.push('mount');
    for (const d of ['containers', 'run']) {
      if (!existsSync(join(root, d))) continue;
      for (const e of readdirSync(join(root, d))) if (e !== 'names' || readdirSync(join(root, d, e)).length) out.push(`${d}/${e}`);
    }
    for (const p of [`/tmp/${marker}`, `/etc/${marker}`, `/${marker}`]) if (existsSync(p)) out.push(`host ${p}`);
    return out;
  };

  afterEach(async () => {
    const ids = (await ts('ps', '-aq', '--no-trunc')).stdout.split('\n').filter(Boolean);
    if (ids.length) await ts('rm', '-f', '-v', ...ids);
    const vols = (await ts('volume', 'ls', '-q')).stdout.split('\n').filter(Boolean);
    if (vols.length) await ts('volume', 'rm', '-f', ...vols);
    const left = leftovers();
    for (const p of [`/tmp/${marker}`, `/etc/${marker}`, `/${marker}`]) rmSync(p, { recursive: true, force: true });
    expect(left).toEqual([]);
  });

  afterAll(() => {
    for (const d of [root, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('round-trips a tree with modes, symlinks and a hard link through a running container', async () => {
    const src = join(work, 'tree');
    mkdirSync(join(src, 'sub', 'deep'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha');
    writeFileSync(join(src, 'sub', 'run.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(join(src, 'sub', 'run.sh'), 0o4755);
    writeFileSync(join(src, 'sub', 'deep', 'secret'), 'shh');
    chmodSync(join(src, 'sub', 'deep', 'secret'), 0o600);
    chmodSync(join(src, 'sub', 'deep'), 0o711);
    symlinkSync('sub/run.sh', join(src, 'rel-link'));
    symlinkSync('/etc/passwd', join(src, 'abs-link'));
    linkSync(join(src, 'a.txt'), join(src, 'hard.txt'));
    chownSync(join(src, 'a.txt'), 1234, 4321);
    const id = await runD(IMG, 'sleep', '60');
    // /tmp exists: the tree lands in /tmp/tree
    await ok('cp', src, `${id.slice(0, 12)}:/tmp`);
    expect((await ok('exec', id, 'sh', '-c', 'cd /tmp/tree && stat -c "%a %u:%g %n" sub/run.sh sub/deep/secret a.txt && readlink rel-link && readlink abs-link && cat sub/run.sh && stat -c %h hard.txt'))).toBe(
      '4755 0:0 sub/run.sh\n600 0:0 sub/deep/secret\n644 0:0 a.txt\nsub/run.sh\n/etc/passwd\n#!/bin/sh\necho hi\n2\n',
    );
    const back = join(work, 'back');
    await ok('cp', `${id}:/tmp/tree`, back);
    expect(tree(back)).toEqual(tree(src));
    // -a keeps uid/gid going in
    await ok('cp', '-a', join(src, 'a.txt'), `${id}:/tmp/owned.txt`);
    expect(await ok('exec', id, 'stat', '-c', '%u:%g', '/tmp/owned.txt')).toBe('1234:4321\n');
  });

  it("follows docker cp's path rules for files, directories, trailing / and /.", async () => {
    const id = await runD('--name', 'rules', IMG, 'sh', '-c', 'mkdir -p /x/dir/inner /x/empty; echo one > /x/dir/f1; echo two > /x/dir/inner/f2; echo file > /x/file; sleep 60');
    await sh('sleep 0.3');
    const host = mkdtempSync(join(work, 'rules-'));
    // file → new name; file → existing dir
    await ok('cp', 'rules:/x/file', join(host, 'renamed'));
    expect(readFileSync(join(host, 'renamed'), 'utf8')).toBe('file\n');
    mkdirSync(join(host, 'into'));
    await ok('cp', 'rules:/x/file', join(host, 'into'));
    expect(readFileSync(join(host, 'into', 'file'), 'utf8')).toBe('file\n');
    // dir → missing path: created with the dir's content; dir → existing dir: nested
    await ok('cp', 'rules:/x/dir', join(host, 'newdir'));
    expect(readFileSync(join(host, 'newdir', 'inner', 'f2'), 'utf8')).toBe('two\n');
    await ok('cp', 'rules:/x/dir', join(host, 'into'));
    expect(readFileSync(join(host, 'into', 'dir', 'f1'), 'utf8')).toBe('one\n');
    // dir/. → existing dir: the content only
    mkdirSync(join(host, 'contents'));
    await ok('cp', 'rules:/x/dir/.', join(host, 'contents'));
    expect(readdirSync(join(host, 'contents')).sort()).toEqual(['f1', 'inner']);
    // errors
    let r = await ts('cp', 'rules:/x/dir', join(host, 'renamed'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot copy a directory to a file');
    r = await ts('cp', 'rules:/x/file', join(host, 'nothere') + '/');
    expect(r.stderr).toContain('does not exist');
    r = await ts('cp', 'rules:/x/nope', host);
    expect(r.stderr).toContain('could not find the file /x/nope in container rules');
    r = await ts('cp', join(host, 'nope'), 'rules:/x');
    expect(r.stderr).toContain('no such file or directory');
    r = await ts('cp', 'nosuchctr:/x', host);
    expect(r.stderr).toContain('no such container: nosuchctr');
    // into the container: dir/. merges into an existing dir, a file replaces a file
    await ok('cp', `${join(host, 'contents')}/.`, 'rules:/x/empty');
    await ok('cp', join(host, 'into', 'file'), 'rules:/x/dir/f1');
    expect(await ok('exec', id, 'sh', '-c', 'ls /x/empty; cat /x/dir/f1')).toBe('f1\ninner\nfile\n');
  });

  it('streams tar archives with -, in and out', async () => {
    const id = await runD(IMG, 'sleep', '60');
    const out = await sh(`$TSBUILD cp ${id}:/etc/passwd - | tar -tvf -`);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^-rw-r--r-- 0\/0 .* passwd\n$/);
    const src = join(work, 'tarsrc');
    mkdirSync(join(src, 'pkg'), { recursive: true });
    writeFileSync(join(src, 'pkg', 'data'), 'from tar');
    const r = await sh(`tar -C ${src} -cf - pkg | $TSBUILD cp - ${id}:/tmp`);
    expect(r.code).toBe(0);
    expect(await ok('exec', id, 'cat', '/tmp/pkg/data')).toBe('from tar');
    const r2 = await sh(`tar -C ${src} -cf - pkg | $TSBUILD cp - ${id}:/tmp/missing`);
    expect(r2.stderr).toContain('must be an existing directory');
  });

  it('works on a stopped container, its volumes included, and leaves no mount behind', async () => {
    await ok('run', '--cgroup-parent', parent, '--name', 'done', '-v', 'cpvol:/vol', IMG, 'sh', '-c', 'echo upper > /in-upper; echo vol > /vol/in-vol');
    const host = mkdtempSync(join(work, 'stopped-'));
    await ok('cp', 'done:/in-upper', join(host, 'a'));
    await ok('cp', 'done:/vol/in-vol', join(host, 'b'));
    expect(readFileSync(join(host, 'a'), 'utf8') + readFileSync(join(host, 'b'), 'utf8')).toBe('upper\nvol\n');
    await ok('cp', join(host, 'a'), 'done:/vol/from-host');
    expect(readFileSync(join(root, 'volumes', 'cpvol', '_data', 'from-host'), 'utf8')).toBe('upper\n');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
  });

  it('CVE-2019-14271: cp out of a symlink to /etc/shadow gives the link, or with -L the container\'s file, never the host\'s', async () => {
    const id = await runD(IMG, 'sleep', '60');
    const host = mkdtempSync(join(work, 'cve-out-'));
    await ok('cp', `${id}:/d/shadow`, join(host, 'link'));
    expect(lstatSync(join(host, 'link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(host, 'link'))).toBe('/etc/shadow');
    await ok('cp', '-L', `${id}:/d/shadow`, join(host, 'followed'));
    expect(readFileSync(join(host, 'followed'), 'utf8')).toBe('container-shadow\n');
    // symlinked directories and ../ climbs in the source path stay in the container
    await ok('cp', `${id}:/d/hostetc/shadow`, join(host, 'via-dir'));
    expect(readFileSync(join(host, 'via-dir'), 'utf8')).toBe('container-shadow\n');
    await ok('cp', `${id}:/d/up/etc/passwd`, join(host, 'via-up'));
    expect(readFileSync(join(host, 'via-up'), 'utf8')).toBe(await ok('exec', id, 'cat', '/etc/passwd'));
    // a tar stream of a directory holding the links carries links, not targets
    const t = await sh(`$TSBUILD cp ${id}:/d - | tar -tvf -`);
    expect(t.stdout).toContain('d/shadow -> /etc/shadow');
    expect(t.stdout).not.toContain('container-shadow');
  });

  it('CVE-2019-14271: cp in through symlinked directories and hostile tar members lands inside the rootfs', async () => {
    const id = await runD(IMG, 'sleep', '60');
    const f = join(work, marker);
    writeFileSync(f, 'payload\n');
    await ok('cp', f, `${id}:/d/hostetc/`);
    await ok('cp', f, `${id}:/d/up/tmp/`);
    await ok('exec', id, 'mkdir', '/srv');
    expect(await ok('exec', id, 'cat', `/etc/${marker}`, `/tmp/${marker}`)).toBe('payload\npayload\n');
    // a tar whose symlink member points at / and a later member writes through it,
    // plus a member climbing out with ../
    const w = new TarWriter();
    const tarFile = join(work, 'evil.tar');
    const written = pipeline(w.stream, createWriteStream(tarFile));
    await w.add({ path: 'root-link', type: 'symlink', linkname: '/', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0 });
    for (const p of [`root-link/tmp/${marker}`, `../../../../tmp/${marker}`]) {
      await w.add({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 5, mtime: 0 }, Buffer.from('evil\n'));
    }
    await w.finish();
    await written;
    const r = await sh(`$TSBUILD cp - ${id}:/srv < ${tarFile}`);
    expect(r.code).toBe(0);
    expect(await ok('exec', id, 'cat', `/tmp/${marker}`)).toBe('evil\n');
    expect((await ts('exec', id, 'ls', `/srv`)).stdout).toBe('root-link\n');
    // afterEach: nothing appeared on the host's /tmp, /etc or /
  });

  it('CVE-2019-14271 race: a container swapping a directory for a symlink to / cannot steer cp in onto the host', async () => {
    const id = await runD(IMG, 'sh', '-c', 'mkdir -p /race; while true; do rm -rf /race/x; mkdir /race/x; rm -rf /race/x; ln -s / /race/x; done');
    const f = join(work, marker);
    writeFileSync(f, 'raced\n');
    for (let i = 0; i < 10; i++) await ts('cp', f, `${id}:/race/x/tmp/`);
    expect(existsSync(`/tmp/${marker}`)).toBe(false);
    expect(statSync(f).size).toBe(6);
  });
});
