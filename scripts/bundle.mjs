#!/usr/bin/env node
/**
 * Bundles the programs tsbuild starts as processes into dist/bundle/ (run by `npm run build`
 * after tsc): `cli.js` (src/cli/main.ts) and `monitor.js` (runtime/monitor/main.ts, the
 * detached container monitor). One ESM build with code splitting: every `import()` of the
 * CLI's command table becomes its own chunk, so a command still loads only the code it needs
 * (test/architecture.test.ts checks this through dist/bundle/meta.json), but as a handful of
 * files instead of some 300 modules, without the per-module resolution of the ESM loader.
 *
 * tsc's dist/src/cli/main.js and dist/runtime/monitor/main.js are then replaced by one-line
 * stubs importing the bundle, so `node dist/src/cli/main.js` (and the `bin`) and the monitor
 * path the runtime computes keep working. Paths the code computes from `import.meta.url`
 * (package.json, the native helper, the monitor, createRequire of koffi and zstd-napi) are
 * kept exactly as in tsc's layout: in each source file, `import.meta.url` is rewritten to the
 * URL its tsc output would have (every bundle file sits directly in dist/bundle/).
 *
 * Native packages (koffi, zstd-napi) stay external; everything else is bundled.
 */
import { build } from 'esbuild';
import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** tsc's output directory: `dist`, or the first argument. */
const DIST = resolve(process.argv[2] ?? join(ROOT, 'dist'));
const OUT = join(DIST, 'bundle');

/** The programs, by output name → source entry → tsc output replaced by a stub. */
const ENTRIES = {
  cli: { source: 'src/cli/main.ts', stub: 'src/cli/main.js', shebang: true },
  monitor: { source: 'runtime/monitor/main.ts', stub: 'runtime/monitor/main.js', shebang: false },
};

/** Rewrites `import.meta.url` in the repository's own .ts files to their tsc output's URL. */
const metaUrlAsTsc = {
  name: 'import-meta-url-as-tsc',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const rel = relative(ROOT, args.path).split(sep).join('/');
      if (rel.startsWith('..') || rel.startsWith('node_modules/') || !text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
      const fromBundle = `../${rel.replace(/\.ts$/, '.js')}`;
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

const result = await build({
  absWorkingDir: ROOT,
  entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, e]) => [name, e.source])),
  outdir: OUT,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'zstd-napi'],
  // CommonJS packages (commander, undici, tar-stream, …) call require() for Node's built-ins
  banner: { js: "import { createRequire as __tsbuildCreateRequire } from 'node:module'; const require = __tsbuildCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  plugins: [metaUrlAsTsc],
});

// meta.json: which sources each bundle file holds (test/architecture.test.ts reads it)
const outputs = {};
for (const [file, o] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith('.js')) continue;
  outputs[relative(OUT, join(ROOT, file)).split(sep).join('/')] = Object.keys(o.inputs).sort();
}
await writeFile(join(OUT, 'meta.json'), `${JSON.stringify({ outputs }, null, 1)}\n`);

// chunks of earlier builds: removed once nothing started before this build can still load them
for (const f of await readdir(OUT)) {
  if (!/^chunk-.*\.js(\.map)?$/.test(f) || outputs[f.replace(/\.map$/, '')]) continue;
  const st = await stat(join(OUT, f)).catch(() => undefined);
  if (st && Date.now() - st.mtimeMs > 3600_000) await rm(join(OUT, f), { force: true });
}

for (const [name, e] of Object.entries(ENTRIES)) {
  const stub = join(DIST, e.stub);
  const target = relative(dirname(stub), join(OUT, `${name}.js`)).split(sep).join('/');
  await writeFile(stub, `${e.shebang ? '#!/usr/bin/env node\n' : ''}// the bundle of ${e.source} (scripts/bundle.mjs)\nimport '${target.startsWith('.') ? target : `./${target}`}';\n`);
  if (e.shebang) await chmod(stub, 0o755);
}
