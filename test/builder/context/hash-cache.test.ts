import { lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildContext } from '../../../builder/context/context.js';
import { statCacheKey } from '../../../builder/context/hash-cache.js';

let dir: string;
let ctxDir: string;
let cacheDir: string;

async function hashWith(cache: boolean): Promise<string> {
  const c = await BuildContext.fromDirectory(ctxDir, cache ? { hashCacheDir: cacheDir } : {});
  return c.hash(await c.select(['.']));
}

async function cacheEntries(): Promise<[string, string][]> {
  const files = await readdir(cacheDir);
  expect(files).toHaveLength(1);
  return (JSON.parse(await readFile(join(cacheDir, files[0]!), 'utf8')) as { entries: [string, string][] }).entries;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-hash-cache-test-'));
  ctxDir = join(dir, 'ctx');
  cacheDir = join(dir, 'cache');
  await mkdir(join(ctxDir, 'sub'), { recursive: true });
  await writeFile(join(ctxDir, 'a.txt'), 'alpha\n');
  await writeFile(join(ctxDir, 'sub', 'b.txt'), 'bravo\n');
  await writeFile(join(ctxDir, 'sub', 'c.txt'), 'charlie\n');
  // files changed in the last 2 s are never cached (racy): let the fixture age
  await sleep(2100);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('context content hash cache', () => {
  it('a file changed within the last 2 s has no cache key; an older one has', () => {
    const st = lstatSync(join(ctxDir, 'a.txt'), { bigint: true });
    const changed = Number(st.ctimeNs / 1_000_000n);
    expect(statCacheKey(st, changed + 500)).toBeUndefined();
    expect(statCacheKey(st, changed + 3000)).toBe(`${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
  });

  it('gives the same digests as no cache, stores one entry per file, and is consulted instead of reading files', async () => {
    const plain = await hashWith(false);
    expect(await hashWith(true)).toBe(plain);
    const entries = await cacheEntries();
    expect(entries).toHaveLength(3);
    // a cached entry is used as is: a wrong hash planted in the cache shows in the digest
    const planted = entries.map(([k, v], i) => [k, i === 0 ? 'f'.repeat(64) : v]);
    await writeFile(join(cacheDir, (await readdir(cacheDir))[0]!), JSON.stringify({ version: 1, entries: planted }));
    expect(await hashWith(true)).not.toBe(plain);
    // a malformed cache file counts as empty
    await writeFile(join(cacheDir, (await readdir(cacheDir))[0]!), '{"version":1,"entries":[[');
    expect(await hashWith(true)).toBe(plain);
  });

  it('an mtime-only touch keeps the digest; a same-size content change changes it', async () => {
    const before = await hashWith(true);
    const t = new Date(Date.now() - 60_000);
    await utimes(join(ctxDir, 'a.txt'), t, t);
    expect(await hashWith(true)).toBe(before);
    // same size, same mtime as before the write: only the content (and ctime) differ
    const st = lstatSync(join(ctxDir, 'sub', 'b.txt'));
    await writeFile(join(ctxDir, 'sub', 'b.txt'), 'BRAVO\n');
    await utimes(join(ctxDir, 'sub', 'b.txt'), st.atime, st.mtime);
    const after = await hashWith(true);
    expect(after).not.toBe(before);
    expect(after).toBe(await hashWith(false));
  });
});
