import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBuildCache } from '../../../builder/solver/cache.js';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { sha256 } from '../../../src/oci/digest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('FileBuildCache', () => {
  it('stores records atomically with a gc root for the layer; misses when the blob is gone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tsbuild-cache-test-'));
    dirs.push(root);
    const content = new FileContentStore(root);
    const blob = await content.put(Buffer.from('layer bytes'), { mediaType: MediaTypes.OciLayerGzip });
    const cache = new FileBuildCache(root, content);
    const key = sha256('step');
    expect(await cache.get(key)).toBeUndefined();
    await cache.put(key, { layer: { descriptor: blob, diffId: sha256('diff') }, created: '2024-01-01T00:00:00Z' });
    expect((await cache.get(key))?.layer?.descriptor.digest).toBe(blob.digest);
    // no temp files left; the gc root names the blob and gc keeps it
    expect(readdirSync(join(root, 'buildcache')).filter((n) => n.startsWith('.'))).toEqual([]);
    const roots = readdirSync(join(root, 'gc-roots'));
    expect(roots.length).toBe(1);
    expect(readFileSync(join(root, 'gc-roots', roots[0]!), 'utf8')).toContain(blob.digest);
    const store = await ImageStore.open(root);
    await store.gc();
    expect(await content.has(blob.digest)).toBe(true);
    // a record whose blob disappeared is a miss
    await content.delete(blob.digest);
    expect(await cache.get(key)).toBeUndefined();
    // records without a layer (empty diffs) need no blob
    const empty = sha256('empty');
    await cache.put(empty, { created: '2024-01-01T00:00:00Z' });
    expect(await cache.get(empty)).toEqual({ created: '2024-01-01T00:00:00Z' });
  });

  it('concurrent writers of the same key leave one valid record', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tsbuild-cache-test-'));
    dirs.push(root);
    const content = new FileContentStore(root);
    const blob = await content.put(Buffer.from('x'), { mediaType: MediaTypes.OciLayerGzip });
    const key = sha256('k');
    await Promise.all(Array.from({ length: 20 }, (_, i) => new FileBuildCache(root, content).put(key, { layer: { descriptor: blob, diffId: sha256('d') }, created: `2024-01-01T00:00:${String(i).padStart(2, '0')}Z` })));
    const rec = await new FileBuildCache(root, content).get(key);
    expect(rec?.layer?.descriptor.digest).toBe(blob.digest);
    expect(readdirSync(join(root, 'buildcache'))).toEqual([`${key.slice(7)}.json`]);
  });
});
