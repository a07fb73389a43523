/**
 * Enforces STYLE.md's import rules (§1) the way ggcr's depcheck does: every import, export-from and
 * dynamic import() of every .ts file under src/, builder/, registry/ and runtime/ must stay inside
 * what its area may depend on. Type-only imports count: they couple the code just the same.
 * Also checks that `tsbuild --help` and `tsbuild version` load none of builder/registry/runtime
 * (nor the heavy packages), by recording every module the built CLI resolves (for the files of
 * the bundle, the sources dist/bundle/meta.json says each one holds).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { needBuiltCli, skipUnless } from './helpers/capabilities.js';
import { makeTempDir, removeTempDirs, REPO_ROOT, run, TSBUILD_MAIN } from './helpers/tools.js';

afterAll(removeTempDirs);

/** What one area may import: other areas (path prefixes) and npm packages; '*' means anything. */
interface Rule {
  readonly area: string;
  readonly internal: readonly string[] | '*';
  readonly packages: readonly string[] | '*';
}

const CORE = ['src/oci', 'src/util'];

/** First match wins (most specific first). Every file must match a rule. */
const RULES: readonly Rule[] = [
  // The one place that binds libc (mount, statfs, xattrs, mknod) for the core.
  { area: 'src/util/libc.ts', internal: CORE, packages: ['koffi'] },
  // zstd-napi, resolved by path and loaded only inside the compression worker thread, when no
  // zstd CLI is on PATH (zstd-napi's streams block the event loop; notes/dependencies.md §1).
  { area: 'src/oci/tar/compress.ts', internal: CORE, packages: ['zstd-napi'] },
  { area: 'src/oci', internal: CORE, packages: [] },
  { area: 'src/util', internal: CORE, packages: [] },
  // tweetnacl: nacl secretbox of cosign's encrypted key files (notes/dependencies.md §0).
  { area: 'src/sign', internal: ['src/sign', ...CORE], packages: ['tweetnacl'] },
  { area: 'src/cli', internal: '*', packages: '*' },
  { area: 'registry', internal: ['registry', ...CORE], packages: ['undici'] },
  { area: 'runtime', internal: ['runtime', ...CORE], packages: ['koffi'] },
  { area: 'builder', internal: ['builder', ...CORE], packages: ['dockerfile-ast'] },
];

const ROOTS = ['src', 'builder', 'registry', 'runtime'];

function under(rel: string, prefix: string): boolean {
  return rel === prefix || rel.startsWith(`${prefix}/`);
}

function ruleFor(rel: string): Rule | undefined {
  return RULES.find((r) => under(rel, r.area));
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The module specifiers of a source text: static imports, export-from, import type, import(). */
export function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** Violations of one file (path relative to the repo, '/'-separated) importing `specs`. */
export function checkImports(rel: string, specs: readonly string[]): string[] {
  const rule = ruleFor(rel);
  if (!rule) return [`${rel}: no import rule covers this file's area (add one to test/architecture.test.ts)`];
  const bad: string[] = [];
  for (const spec of specs) {
    if (spec.startsWith('.') || spec.startsWith('/')) {
      const target = relative(REPO_ROOT, resolve(REPO_ROOT, dirname(rel), spec)).split(sep).join('/');
      if (target.startsWith('..') || !ROOTS.some((r) => under(target, r))) {
        bad.push(`${rel}: imports ${spec}, outside the source roots`);
        continue;
      }
      if (rule.internal === '*') continue;
      if (!rule.internal.some((a) => under(target, a))) bad.push(`${rel}: imports ${spec} (${target}); ${rule.area} may import only ${rule.internal.join(', ')}`);
    } else if (spec.startsWith('node:')) {
      continue;
    } else {
      if (rule.packages === '*') continue;
      const pkg = packageName(spec);
      if (!rule.packages.includes(pkg)) {
        const hint = ts.isExternalModuleNameRelative(spec) ? '' : builtinHint(pkg);
        bad.push(`${rel}: imports package ${spec}; ${rule.area} may import only node:*${rule.packages.length ? `, ${rule.packages.join(', ')}` : ''}${hint}`);
      }
    }
  }
  return bad;
}

const BUILTINS = new Set(['fs', 'path', 'os', 'stream', 'crypto', 'child_process', 'util', 'events', 'zlib', 'url', 'net', 'http', 'https', 'worker_threads', 'buffer', 'assert', 'module', 'timers', 'readline', 'dns', 'tty']);
function builtinHint(pkg: string): string {
  return BUILTINS.has(pkg) ? ` (write node:${pkg})` : '';
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(REPO_ROOT, rel);
    if (!existsSync(abs)) return;
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(child);
    }
  };
  for (const r of ROOTS) walk(r);
  return out.sort();
}

describe('import rules (STYLE.md §1)', () => {
  it('every source file imports only what its area may', () => {
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(5);
    const bad = files.flatMap((f) => checkImports(f, importsOf(readFileSync(join(REPO_ROOT, f), 'utf8'))));
    expect(bad).toEqual([]);
  });

  it('the checker sees every import form and flags each kind of violation', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../../registry/b.js';",
      "export { c } from 'undici';",
      "export * from '../util/d.js';",
      "import 'koffi';",
      'const e = await import("../../builder/e.js");',
      "import fs from 'fs';",
      "import { x } from 'node:fs';",
    ].join('\n');
    const specs = importsOf(text);
    expect(specs).toEqual(['./a.js', '../../registry/b.js', 'undici', '../util/d.js', 'koffi', '../../builder/e.js', 'fs', 'node:fs']);
    const bad = checkImports('src/oci/x.ts', specs);
    expect(bad).toHaveLength(5);
    expect(bad.join('\n')).toMatch(/registry\/b\.js/);
    expect(bad.join('\n')).toMatch(/package undici/);
    expect(bad.join('\n')).toMatch(/package koffi/);
    expect(bad.join('\n')).toMatch(/builder\/e\.js/);
    expect(bad.join('\n')).toMatch(/package fs.*write node:fs/);
    expect(checkImports('src/util/libc.ts', ['koffi', './errors.js', '../oci/digest.js'])).toEqual([]);
    expect(checkImports('src/util/streams.ts', ['koffi'])).toHaveLength(1);
    expect(checkImports('registry/remote/push.ts', ['undici', '../../src/oci/image.js', '../transport/fetch.js'])).toEqual([]);
    expect(checkImports('registry/remote/push.ts', ['../../runtime/run.js'])).toHaveLength(1);
    expect(checkImports('runtime/run.ts', ['../builder/x.js', '../registry/y.js', 'koffi', 'undici'])).toHaveLength(3);
    expect(checkImports('builder/solver/s.ts', ['dockerfile-ast', '../../runtime/run.js', '../../src/cli/main.js'])).toHaveLength(2);
    expect(checkImports('src/sign/sign.ts', ['tweetnacl', '../oci/digest.js', '../../registry/x.js'])).toHaveLength(1);
    expect(checkImports('src/cli/commands/run.ts', ['../../../runtime/run.js', '../../../registry/x.js', 'commander'])).toEqual([]);
    expect(checkImports('src/oci/x.ts', ['../../test/helpers/tools.js'])).toHaveLength(1);
    expect(checkImports('src/newarea/x.ts', [])).toHaveLength(1);
  });
});

describe('lazy command loading', () => {
  const why = needBuiltCli();

  /** Runs the built CLI with a resolve hook that records every module URL it resolves. */
  async function resolvedBy(args: string[]): Promise<{ code: number; stdout: string; urls: string[] }> {
    const dir = await makeTempDir('tsbuild-arch-');
    const log = join(dir, 'resolved.txt');
    await writeFile(join(dir, 'hooks.mjs'), [
      "import { appendFileSync } from 'node:fs';",
      'let out;',
      'export async function initialize(data) { out = data.out; }',
      'export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(out, r.url + "\\n"); return r; }',
    ].join('\n'));
    await writeFile(join(dir, 'register.mjs'), [
      "import { register } from 'node:module';",
      `register('./hooks.mjs', import.meta.url, { data: { out: ${JSON.stringify(log)} } });`,
    ].join('\n'));
    await writeFile(log, '');
    const r = await run(process.execPath, ['--import', join(dir, 'register.mjs'), TSBUILD_MAIN, ...args], { env: { TSBUILD_ROOT: join(dir, 'root') } });
    const files = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((u) => (u.startsWith('file:') ? relative(REPO_ROOT, new URL(u).pathname).split(sep).join('/') : u));
    return { code: r.code, stdout: r.stdout, files, urls: files.flatMap(bundledModules) };
  }

  /**
   * The modules a resolved file stands for: a file of the bundle (dist/bundle/, scripts/bundle.mjs)
   * holds the sources its meta.json lists, named as tsc's output of each (`builder/x.ts` →
   * `dist/builder/x.js`) or as their package path; any other file stands for itself.
   */
  function bundledModules(file: string): string[] {
    if (!file.startsWith('dist/bundle/')) return [file];
    const meta = JSON.parse(readFileSync(join(REPO_ROOT, 'dist/bundle/meta.json'), 'utf8')) as { outputs: Record<string, string[]> };
    const inputs = meta.outputs[file.slice('dist/bundle/'.length)];
    if (!inputs) throw new Error(`${file} is not in dist/bundle/meta.json (stale bundle? npm run build)`);
    return [file, ...inputs.map((i) => (i.includes('node_modules/') ? i.slice(i.lastIndexOf('node_modules/')) : `dist/${i.replace(/\.ts$/, '.js')}`))];
  }

  const HEAVY = /^(dist\/(builder|registry|runtime)\/|node_modules\/(koffi|undici|dockerfile-ast|zstd-napi|tar-stream)\/)/;

  it.skipIf(skipUnless(why))('tsbuild --help loads no command module, builder, registry, runtime or heavy package', async () => {
    const { code, stdout, urls, files } = await resolvedBy(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('version');
    // npm run build bundles the CLI (scripts/bundle.mjs): the stub loads dist/bundle/cli.js
    expect(files).toContain('dist/bundle/cli.js');
    // the hook saw the CLI itself: the check below cannot pass vacuously
    expect(urls).toContain('dist/src/cli/main.js');
    expect(urls).toContain('dist/src/cli/commands/index.js');
    expect(urls.some((u) => u.startsWith('node_modules/commander/'))).toBe(true);
    expect(urls.filter((u) => HEAVY.test(u))).toEqual([]);
    expect(urls.filter((u) => u.startsWith('dist/src/cli/commands/') && u !== 'dist/src/cli/commands/index.js')).toEqual([]);
  });

  it.skipIf(skipUnless(why))('tsbuild version loads only its own command module', async () => {
    const { code, urls } = await resolvedBy(['version']);
    expect(code).toBe(0);
    expect(urls).toContain('dist/src/cli/commands/version.js');
    expect(urls.filter((u) => HEAVY.test(u))).toEqual([]);
    expect(urls.filter((u) => u.startsWith('dist/src/cli/commands/') && !/\/(index|version)\.js$/.test(u))).toEqual([]);
  });

  it.skipIf(skipUnless(why))('local image commands load neither builder, registry nor runtime', async () => {
    const index = readFileSync(join(REPO_ROOT, 'src/cli/commands/index.ts'), 'utf8');
    const local = ['images', 'inspect', 'save', 'load', 'import', 'rmi', 'tag'].filter((c) => index.includes(`name: '${c}'`));
    for (const c of local) {
      const { code, urls } = await resolvedBy([c, '--help']);
      expect(code, `tsbuild ${c} --help`).toBe(0);
      expect(urls, c).toContain(`dist/src/cli/commands/${c}.js`);
      expect(urls.filter((u) => /^dist\/(builder|registry|runtime)\//.test(u)), c).toEqual([]);
    }
  });
});
