import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BuildContext } from '../../../builder/context/context.js';
import type { CopyStep } from '../../../builder/convert/resolve.js';
import { applyCopy, applyWorkdir } from '../../../builder/exec/copy.js';
import { BuildError } from '../../../builder/exec/errors.js';
import { resolveInRoot, resolveOwner } from '../../../builder/exec/root-path.js';
import { needRoot } from '../../helpers/capabilities.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tsbuild-copy-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function step(p: Partial<CopyStep>): CopyStep {
  return {
    kind: 'COPY', from: { kind: 'context' }, sources: [], contents: [], dest: '/', chown: '', chmod: '', link: false, parents: false, excludes: [], checksum: '', user: '',
    location: { line: 1, column: 1, endLine: 1 }, original: 'COPY', history: { createdBy: '', emptyLayer: false, comment: '' }, onbuild: false, ...p,
  };
}

function rootfs(): string {
  const r = tmp();
  mkdirSync(join(r, 'etc'));
  writeFileSync(join(r, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n');
  writeFileSync(join(r, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
  mkdirSync(join(r, 'existing'));
  return r;
}

async function copy(root: string, ctxDir: string, p: Partial<CopyStep>): Promise<void> {
  const ctx = await BuildContext.fromDirectory(ctxDir);
  const s = step(p);
  await applyCopy(s, root, { kind: 'context', context: ctx, selected: s.sources.length ? await ctx.select(s.sources) : [] });
}

describe('resolveInRoot', () => {
  it('keeps absolute and relative symlinks and .. inside the root', async () => {
    const r = tmp();
    mkdirSync(join(r, 'a'));
    symlinkSync('/etc', join(r, 'abs'));
    symlinkSync('../../../../..', join(r, 'a/up'));
    expect((await resolveInRoot(r, '/abs/passwd')).host).toBe(join(r, 'etc/passwd'));
    expect((await resolveInRoot(r, '/a/up/x')).host).toBe(join(r, 'x'));
    expect((await resolveInRoot(r, '/../../x')).host).toBe(join(r, 'x'));
    expect((await resolveInRoot(r, '/abs', false)).host).toBe(join(r, 'abs'));
  });

  it('resolves owners like buildkit: names from passwd/group, a bare uid is also the gid', async () => {
    const r = rootfs();
    expect(await resolveOwner(r, '')).toEqual({ uid: 0, gid: 0 });
    expect(await resolveOwner(r, 'app')).toEqual({ uid: 1234, gid: 2345 });
    expect(await resolveOwner(r, 'app:staff')).toEqual({ uid: 1234, gid: 50 });
    expect(await resolveOwner(r, '77')).toEqual({ uid: 77, gid: 77 });
    expect(await resolveOwner(r, '77:8')).toEqual({ uid: 77, gid: 8 });
    await expect(resolveOwner(r, 'nobody-here')).rejects.toThrow(/unable to find user nobody-here/);
  });
});

const why = needRoot();
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('applyCopy', () => {
  it('file to new path, into an existing dir, trailing slash, several sources, dir contents', async () => {
    const ctx = tmp();
    writeFileSync(join(ctx, 'a'), 'A');
    writeFileSync(join(ctx, 'b'), 'B');
    mkdirSync(join(ctx, 'd/e'), { recursive: true });
    writeFileSync(join(ctx, 'd/e/f'), 'F');
    const r = rootfs();
    await copy(r, ctx, { sources: ['a'], dest: '/new' });
    await copy(r, ctx, { sources: ['a'], dest: '/existing' });
    await copy(r, ctx, { sources: ['b'], dest: '/made/' });
    await copy(r, ctx, { sources: ['a', 'b'], dest: '/multi/' });
    await copy(r, ctx, { sources: ['d'], dest: '/dd' });
    expect(readFileSync(join(r, 'new'), 'utf8')).toBe('A');
    expect(readFileSync(join(r, 'existing/a'), 'utf8')).toBe('A');
    expect(readFileSync(join(r, 'made/b'), 'utf8')).toBe('B');
    expect(readFileSync(join(r, 'multi/a'), 'utf8') + readFileSync(join(r, 'multi/b'), 'utf8')).toBe('AB');
    expect(readFileSync(join(r, 'dd/e/f'), 'utf8')).toBe('F');
    await expect(copy(r, ctx, { sources: ['a', 'b'], dest: '/nodir' })).rejects.toThrow(BuildError);
  });

  it('--chown applies to copied files and created parents; --chmod to files; context owner is 0:0', async () => {
    const ctx = tmp();
    writeFileSync(join(ctx, 'a'), 'A');
    const r = rootfs();
    await copy(r, ctx, { sources: ['a'], dest: '/p/q/a', chown: 'app', chmod: '0640' });
    for (const p of ['p', 'p/q', 'p/q/a']) expect([lstatSync(join(r, p)).uid, lstatSync(join(r, p)).gid]).toEqual([1234, 2345]);
    expect(lstatSync(join(r, 'p/q/a')).mode & 0o7777).toBe(0o640);
    await copy(r, ctx, { sources: ['a'], dest: '/plain' });
    expect([lstatSync(join(r, 'plain')).uid, lstatSync(join(r, 'plain')).gid]).toEqual([0, 0]);
    await expect(copy(r, ctx, { sources: ['a'], dest: '/x', chmod: 'u+x' })).rejects.toThrow(/only octal/);
  });

  it('never writes outside the root through a symlink in the destination', async () => {
    const ctx = tmp();
    writeFileSync(join(ctx, 'a'), 'A');
    const r = rootfs();
    const outside = tmp();
    symlinkSync(outside, join(r, 'escape'));
    await copy(r, ctx, { sources: ['a'], dest: '/escape/a' });
    expect(() => lstatSync(join(outside, 'a'))).toThrow();
    expect(readFileSync(join(r, outside, 'a'), 'utf8')).toBe('A');
  });

  it('an item a later source writes again in a directory the step created replaces it, never writing through it', async () => {
    const ctx = tmp();
    const outside = tmp();
    writeFileSync(join(outside, 'target'), 'OUT');
    mkdirSync(join(ctx, 'a/d'), { recursive: true });
    symlinkSync(join(outside, 'target'), join(ctx, 'a/d/f'));
    mkdirSync(join(ctx, 'b/d'), { recursive: true });
    writeFileSync(join(ctx, 'b/d/f'), 'B');
    const r = rootfs();
    await copy(r, ctx, { sources: ['a', 'b'], dest: '/new/' });
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('OUT');
    expect(lstatSync(join(r, 'new/d/f')).isFile()).toBe(true);
    expect(readFileSync(join(r, 'new/d/f'), 'utf8')).toBe('B');
  });

  it('heredoc contents and WORKDIR ownership', async () => {
    const r = rootfs();
    await applyCopy(step({ contents: [{ path: 'hd', data: 'text\n' }], dest: '/etc/hd' }), r, { kind: 'root', root: tmp() });
    expect(readFileSync(join(r, 'etc/hd'), 'utf8')).toBe('text\n');
    await applyWorkdir(r, '/w/x', 'app');
    expect(lstatSync(join(r, 'w/x')).uid).toBe(1234);
  });

  it('COPY --from a root keeps owners and globs the last component', async () => {
    const src = tmp();
    mkdirSync(join(src, 'out'));
    writeFileSync(join(src, 'out/x.txt'), 'X');
    writeFileSync(join(src, 'out/y.txt'), 'Y');
    writeFileSync(join(src, 'out/z.bin'), 'Z');
    const { chownSync } = await import('node:fs');
    chownSync(join(src, 'out/x.txt'), 42, 43);
    const r = rootfs();
    await applyCopy(step({ from: { kind: 'stage', index: 0 }, sources: ['/out/*.txt'], dest: '/got/' }), r, { kind: 'root', root: src });
    expect(readFileSync(join(r, 'got/x.txt'), 'utf8') + readFileSync(join(r, 'got/y.txt'), 'utf8')).toBe('XY');
    expect(() => lstatSync(join(r, 'got/z.bin'))).toThrow();
    expect([lstatSync(join(r, 'got/x.txt')).uid, lstatSync(join(r, 'got/x.txt')).gid]).toEqual([42, 43]);
    await expect(applyCopy(step({ from: { kind: 'stage', index: 0 }, sources: ['/nope'], dest: '/n' }), r, { kind: 'root', root: src })).rejects.toThrow(/"\/nope": not found/);
  });

  it('ADD extracts a local tar (plain or gzip) into the destination; COPY does not', async () => {
    const ctx = tmp();
    const content = tmp();
    mkdirSync(join(content, 'pkg'));
    writeFileSync(join(content, 'pkg/file'), 'inside');
    const { execFileSync } = await import('node:child_process');
    execFileSync('tar', ['-C', content, '-czf', join(ctx, 'a.tar.gz'), 'pkg']);
    execFileSync('tar', ['-C', content, '-cf', join(ctx, 'b.tar'), 'pkg']);
    const r = rootfs();
    await copy(r, ctx, { kind: 'ADD', sources: ['a.tar.gz'], dest: '/x/' });
    await copy(r, ctx, { kind: 'ADD', sources: ['b.tar'], dest: '/y' });
    await copy(r, ctx, { sources: ['a.tar.gz'], dest: '/z/' });
    expect(readFileSync(join(r, 'x/pkg/file'), 'utf8')).toBe('inside');
    expect(readFileSync(join(r, 'y/pkg/file'), 'utf8')).toBe('inside');
    expect(lstatSync(join(r, 'z/a.tar.gz')).isFile()).toBe(true);
  });

  it('--parents keeps source paths; --exclude leaves matches out', async () => {
    const ctx = tmp();
    mkdirSync(join(ctx, 'a/b'), { recursive: true });
    mkdirSync(join(ctx, 'c'), { recursive: true });
    writeFileSync(join(ctx, 'a/b/f.txt'), 'F');
    writeFileSync(join(ctx, 'c/g.txt'), 'G');
    writeFileSync(join(ctx, 'c/skip.log'), 'S');
    const r = rootfs();
    await copy(r, ctx, { sources: ['a/b/f.txt', 'c/g.txt'], dest: '/p/', parents: true });
    expect(readFileSync(join(r, 'p/a/b/f.txt'), 'utf8')).toBe('F');
    expect(readFileSync(join(r, 'p/c/g.txt'), 'utf8')).toBe('G');
    const c = await BuildContext.fromDirectory(ctx);
    const s = step({ sources: ['c'], dest: '/ex', excludes: ['**/*.log'] });
    await applyCopy(s, r, { kind: 'context', context: c, selected: await c.select(s.sources, { excludes: s.excludes }) });
    expect(readFileSync(join(r, 'ex/g.txt'), 'utf8')).toBe('G');
    expect(() => lstatSync(join(r, 'ex/skip.log'))).toThrow();
  });

  it('a context symlink is followed only inside the context; hardlinks stay hardlinks', async () => {
    const ctx = tmp();
    const outside = tmp();
    writeFileSync(join(outside, 'host-secret'), 'HOST');
    symlinkSync(join(outside, 'host-secret'), join(ctx, 'abs-link'));
    writeFileSync(join(ctx, 'h1'), 'H');
    const { linkSync } = await import('node:fs');
    linkSync(join(ctx, 'h1'), join(ctx, 'h2'));
    const r = rootfs();
    await expect(copy(r, ctx, { sources: ['abs-link'], dest: '/got' })).rejects.toThrow(/not found/);
    expect(() => lstatSync(join(r, 'got'))).toThrow();
    await copy(r, ctx, { sources: ['h1', 'h2'], dest: '/hl/' });
    expect(lstatSync(join(r, 'hl/h1')).ino).toBe(lstatSync(join(r, 'hl/h2')).ino);
  });
});
