import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/oci/digest.js';
import { cacheKey, opDigest, type ExecOp } from '../../../builder/graph/op.js';

const run: ExecOp = { kind: 'exec', args: ['/bin/sh', '-c', 'echo hi'], env: ['PATH=/bin'], cwd: '/', user: '', network: 'host', inlineFiles: [] };

describe('cache keys', () => {
  it('depend on the parent, every semantic field of the op, and the inputs', () => {
    const parent = sha256('parent');
    const k = cacheKey(parent, run);
    expect(cacheKey(parent, { ...run })).toBe(k);
    expect(cacheKey(sha256('other'), run)).not.toBe(k);
    expect(cacheKey(undefined, run)).not.toBe(k);
    for (const change of [{ args: ['/bin/sh', '-c', 'echo ho'] }, { env: ['PATH=/usr/bin'] }, { cwd: '/x' }, { user: 'nobody' }, { network: 'none' }]) {
      expect(cacheKey(parent, { ...run, ...change } as ExecOp)).not.toBe(k);
    }
    expect(cacheKey(parent, run, [sha256('a')])).not.toBe(cacheKey(parent, run, [sha256('b')]));
    expect(cacheKey(parent, run, [sha256('a'), sha256('b')])).not.toBe(cacheKey(parent, run, [sha256('b'), sha256('a')]));
  });

  it('do not depend on key order of the op object', () => {
    const reordered = { inlineFiles: [], network: 'host', user: '', cwd: '/', env: ['PATH=/bin'], args: ['/bin/sh', '-c', 'echo hi'], kind: 'exec' } as ExecOp;
    expect(opDigest(reordered)).toBe(opDigest(run));
  });
});
