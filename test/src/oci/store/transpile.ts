import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

const REPO = new URL('../../../../', import.meta.url).pathname;

/**
 * Transpiles src/**.ts (types stripped, no type check) into a fresh directory under
 * node_modules/.cache so that child processes can import the library as plain ESM and still
 * resolve the project's npm dependencies. Returns the output dir and a cleanup function.
 */
export async function transpileSrc(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const cache = join(REPO, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(join(cache, 'tsbuild-test-'));
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const out = ts.transpileModule(await readFile(p, 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
          fileName: p,
        }).outputText;
        const target = join(dir, relative(REPO, p)).replace(/\.ts$/, '.js');
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, out);
      }
    }
  };
  await walk(join(REPO, 'src'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
