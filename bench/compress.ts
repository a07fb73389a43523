/**
 * Bench entry for layer compression: `node dist/bench/compress.js gzip|zstd [level] < in > out`
 * streams stdin through tsbuild's own compressStream (src/oci/tar) to stdout, exactly as layer
 * writing does. `--probe` exits 0 when compressStream is available, 3 when it is not.
 */
import { pipeline } from 'node:stream/promises';
import type { Duplex } from 'node:stream';

type Compression = 'none' | 'gzip' | 'zstd';
interface TarModule {
  compressStream(c: Compression, level?: number): Duplex;
}

async function load(): Promise<TarModule | undefined> {
  // A computed specifier: the bench must build even before src/oci/tar exports compressStream.
  const url = new URL('../src/oci/tar/index.js', import.meta.url).href;
  try {
    const mod = (await import(url)) as Partial<TarModule>;
    return typeof mod.compressStream === 'function' ? (mod as TarModule) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const [algo, level] = process.argv.slice(2);
  const tar = await load();
  if (!tar) {
    process.stderr.write('compress: src/oci/tar compressStream is not available\n');
    process.exitCode = 3;
    return;
  }
  if (algo === '--probe') return;
  if (algo !== 'gzip' && algo !== 'zstd') {
    process.stderr.write('usage: compress.js gzip|zstd [level] < in > out\n');
    process.exitCode = 2;
    return;
  }
  await pipeline(process.stdin, tar.compressStream(algo, level === undefined ? undefined : Number(level)), process.stdout);
}

await main();
