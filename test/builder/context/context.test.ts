import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildContext } from '../../../builder/context/context.js';
import { DockerfileError } from '../../../builder/dockerfile/errors.js';

let root: string;

async function put(rel: string, data = rel): Promise<void> {
  await mkdir(join(root, rel, '..'), { recursive: true });
  await writeFile(join(root, rel), data);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tsbuild-ctx-test-'));
  for (const f of ['Dockerfile', 'main.go', 'go.mod', 'README.md', 'app.log', 'src/a.go', 'src/b.go', 'src/sub/c.go', 'src/sub/notes.md', 'node_modules/x/index.js', 'docs/keep.txt', 'docs/drop.txt', 'build/Dockerfile', 'deep/a/b/c.go']) {
    await put(f);
  }
  await symlink('main.go', join(root, 'link.go'));
  await chmod(join(root, 'main.go'), 0o755);
  await writeFile(join(root, '.dockerignore'), 'node_modules\n*.log\ndocs\n!docs/keep.txt\n');
  await writeFile(join(root, 'build/Dockerfile.dockerignore'), '*.md\n**/*.md\n');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const paths = (s: { entries: readonly { path: string }[] }) => s.entries.map((e) => e.path);

describe('BuildContext', () => {
  it('reads .dockerignore and hides ignored paths, keeping exceptions', async () => {
    const ctx = await BuildContext.fromDirectory(root);
    expect(ctx.ignoreFile).toBe(join(root, '.dockerignore'));
    expect(ctx.isIgnored('node_modules/x/index.js')).toBe(true);
    expect(ctx.isIgnored('docs/drop.txt')).toBe(true);
    expect(ctx.isIgnored('docs/keep.txt')).toBe(false);
    const [all] = await ctx.select(['.']);
    expect(paths(all!)).not.toContain('app.log');
    expect(paths(all!)).not.toContain('node_modules');
    expect(paths(all!)).toContain('docs/keep.txt');
    expect(paths(all!)).not.toContain('docs/drop.txt');
  });
  it('prefers <Dockerfile>.dockerignore next to the Dockerfile', async () => {
    const ctx = await BuildContext.fromDirectory(root, { dockerfile: 'build/Dockerfile' });
    expect(ctx.ignorePatterns).toEqual(['*.md', '**/*.md']);
    expect(ctx.isIgnored('app.log')).toBe(false);
    expect(ctx.isIgnored('src/sub/notes.md')).toBe(true);
  });
  it('selects files, directories and wildcards (per component, ** for any depth)', async () => {
    const ctx = await BuildContext.fromDirectory(root);
    const [file, dir, glob, star2, lead] = await ctx.select(['main.go', 'src', 'src/*.go', '**/c.go', '/../go.mod']);
    expect(paths(file!)).toEqual(['main.go']);
    expect(paths(dir!)).toEqual(['src', 'src/a.go', 'src/b.go', 'src/sub', 'src/sub/c.go', 'src/sub/notes.md']);
    expect(paths(glob!)).toEqual(['src/a.go', 'src/b.go']);
    expect(star2!.roots.map((r) => r.path)).toEqual(['deep/a/b/c.go', 'src/sub/c.go']);
    expect(paths(lead!)).toEqual(['go.mod']);
  });
  it('applies COPY --exclude patterns', async () => {
    const ctx = await BuildContext.fromDirectory(root);
    const [s] = await ctx.select(['src'], { excludes: ['**/*.md', 'src/b.go'] });
    expect(paths(s!)).toEqual(['src', 'src/a.go', 'src/sub', 'src/sub/c.go']);
  });
  it('fails for missing or ignored sources and wildcards without match', async () => {
    const ctx = await BuildContext.fromDirectory(root);
    await expect(ctx.select(['nope.txt'])).rejects.toThrow('"/nope.txt": not found');
    await expect(ctx.select(['app.log'])).rejects.toThrow(DockerfileError);
    await expect(ctx.select(['*.rs'])).rejects.toThrow('"/*.rs": not found');
  });
  it('reports symlinks as links with their target', async () => {
    const ctx = await BuildContext.fromDirectory(root);
    const [s] = await ctx.select(['link.go']);
    expect(s!.roots[0]).toMatchObject({ type: 'symlink', linkname: 'main.go' });
  });
  it('hashes content and metadata but not mtime', async () => {
    const ctx = await BuildContext.fromDirectory(root);
    const sel = await ctx.select(['src', 'main.go']);
    const h1 = await ctx.hash(sel);
    await utimes(join(root, 'src/a.go'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(await ctx.hash(await ctx.select(['src', 'main.go']))).toBe(h1);
    await chmod(join(root, 'main.go'), 0o644);
    const h2 = await ctx.hash(await ctx.select(['src', 'main.go']));
    expect(h2).not.toBe(h1);
    await chmod(join(root, 'main.go'), 0o755);
    await writeFile(join(root, 'src/a.go'), 'changed');
    const h3 = await ctx.hash(await ctx.select(['src', 'main.go']));
    expect(h3).not.toBe(h1);
    await writeFile(join(root, 'src/a.go'), 'src/a.go');
    expect(await ctx.hash(await ctx.select(['src', 'main.go']))).toBe(h1);
    expect(h1).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('BuildContext.fromTar', () => {
  const why = (() => {
    try {
      execFileSync('tar', ['--version'], { stdio: 'ignore' });
      return '';
    } catch {
      return 'GNU tar is not installed';
    }
  })();
  if (why) console.warn('skip: ' + why);
  for (const gz of [false, true]) {
    it.skipIf(!!why)(`unpacks a ${gz ? 'gzip-compressed ' : ''}context tar and removes it on close`, async () => {
      const out = await mkdtemp(join(tmpdir(), 'tsbuild-ctx-tar-'));
      try {
        const tarPath = join(out, gz ? 'ctx.tar.gz' : 'ctx.tar');
        execFileSync('tar', [gz ? '-czf' : '-cf', tarPath, '-C', root, '.']);
        const ctx = await BuildContext.fromTar(createReadStream(tarPath), { tmpParent: out });
        try {
          expect(ctx.ignorePatterns).toContain('node_modules');
          const [s] = await ctx.select(['src/*.go']);
          expect(paths(s!)).toEqual(['src/a.go', 'src/b.go']);
          const dirCtx = await BuildContext.fromDirectory(root);
          // same files and metadata → same hash as the directory context
          expect(await ctx.hash([s!])).toBe(await dirCtx.hash(await dirCtx.select(['src/*.go'])));
        } finally {
          await ctx.close();
        }
        expect(execFileSync('ls', ['-A', out], { encoding: 'utf8' }).trim()).toBe(gz ? 'ctx.tar.gz' : 'ctx.tar');
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });
  }
});
