import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileInRoot } from '../../../runtime/rootfs/read-in-root.js';

const temps: string[] = [];
afterEach(() => { while (temps.length) rmSync(temps.pop()!, { recursive: true, force: true }); });

describe('readFileInRoot', () => {
  it('resolves symlinks inside the root, never on the host', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tsbuild-inroot-'));
    temps.push(root);
    mkdirSync(join(root, 'etc'));
    mkdirSync(join(root, 'data'));
    writeFileSync(join(root, 'data/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    symlinkSync('/data/passwd', join(root, 'etc/passwd'));
    symlinkSync('../../../../../../etc/hostname', join(root, 'etc/group'));
    symlinkSync('loop', join(root, 'etc/loop'));
    expect(await readFileInRoot(root, '/etc/passwd')).toBe('root:x:0:0::/root:/bin/sh\n');
    // a relative escape is clamped at the root: /etc/hostname of the image, which does not exist
    expect(await readFileInRoot(root, '/etc/group')).toBeUndefined();
    writeFileSync(join(root, 'etc/hostname'), 'img\n');
    expect(await readFileInRoot(root, '/etc/group')).toBe('img\n');
    expect(await readFileInRoot(root, '/etc/loop')).toBeUndefined();
    expect(await readFileInRoot(root, '/etc/missing')).toBeUndefined();
  });
});
