import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commitUpper, runtimeExclusions } from '../../../builder/exec/commit.js';
import { FileContentStore } from '../../../src/oci/content/file-store.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tsbuild-commit-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('commitUpper', () => {
  it('leaves out runtime files and mount points; an upper with nothing else gives no layer', async () => {
    const upper = tmp();
    mkdirSync(join(upper, 'etc'));
    writeFileSync(join(upper, 'etc/hosts'), '');
    writeFileSync(join(upper, 'etc/resolv.conf'), '');
    mkdirSync(join(upper, 'proc'));
    mkdirSync(join(upper, 'dev/pipes'), { recursive: true });
    const opts = { runtimePaths: ['/proc', '/dev', '/dev/pipes', '/etc/hosts'], excludeEtcFiles: true };
    expect([...(await runtimeExclusions(upper, opts))].sort()).toEqual(['dev', 'dev/pipes', 'etc', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'proc']);
    const root = tmp();
    expect(await commitUpper(upper, new FileContentStore(root), opts)).toBeUndefined();
  });

  it('keeps a mount point directory the process put something into, and real changes', async () => {
    const upper = tmp();
    mkdirSync(join(upper, 'etc'));
    writeFileSync(join(upper, 'etc/hosts'), '');
    writeFileSync(join(upper, 'etc/app.conf'), 'x');
    const ex = await runtimeExclusions(upper, { runtimePaths: ['/etc/hosts'], excludeEtcFiles: true });
    expect(ex.has('etc')).toBe(false);
    expect(ex.has('etc/hosts')).toBe(true);
    const layer = await commitUpper(upper, new FileContentStore(tmp()), { runtimePaths: ['/etc/hosts'], excludeEtcFiles: true });
    expect(layer?.diffId).toMatch(/^sha256:/);
  });
});
