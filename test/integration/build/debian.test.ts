/**
 * A build on the offline Debian base with apt-get over host networking (needs the Debian
 * mirror named in the base's sources.list; skipped with the reason when it is unreachable).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importRootfs } from '../../../src/oci/store/import.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { debianRootfs } from '../../helpers/base-images.js';
import { firstReason, needDebianRootfs } from '../../helpers/capabilities.js';
import { buildUnavailable, CASES, leftovers, runBuild, unpackImage } from './harness.js';

const MIRROR = 'http://deb.debian.org/debian/dists/bookworm/Release';

async function mirrorUnreachable(): Promise<string | undefined> {
  try {
    const r = await fetch(MIRROR, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
    return r.ok ? undefined : `the Debian mirror answered ${r.status} for ${MIRROR}`;
  } catch (e) {
    return `the Debian mirror is unreachable (${MIRROR}): ${(e as Error).message}`;
  }
}

const why = firstReason(buildUnavailable(), needDebianRootfs(), await mirrorUnreachable());
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!!why)('tsbuild build (debian)', () => {
  it('apt-get install with host networking, useradd, USER and WORKDIR owned by the user', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tsbuild-build-debian-'));
    temps.push(root);
    const store = await ImageStore.open(root);
    const desc = await importRootfs(store, await debianRootfs(), { created: new Date('2024-01-01T00:00:00Z') });
    await store.tag('localhost/test/debian:bookworm', desc);
    const { result } = await runBuild(root, store, { context: join(CASES, 'debian-apt') });
    const fs = mkdtempSync(join(tmpdir(), 'tsbuild-build-debian-fs-'));
    temps.push(fs);
    await unpackImage(result.image, fs);
    expect(existsSync(join(fs, 'usr/bin/hello'))).toBe(true);
    expect(readFileSync(join(fs, 'home/builder/work/greeting'), 'utf8')).toBe('Hello, world!\n');
    expect(readFileSync(join(fs, 'home/builder/work/whoami'), 'utf8')).toBe('builder\n');
    expect(readFileSync(join(fs, 'etc/app.conf'), 'utf8')).toBe('config\n');
    const uid = Number(/^builder:x:(\d+):/m.exec(readFileSync(join(fs, 'etc/passwd'), 'utf8'))![1]);
    expect(statSync(join(fs, 'home/builder/work')).uid).toBe(uid);
    const cfg = await result.image.config();
    expect(cfg.config?.User).toBe('builder');
    expect(cfg.config?.Cmd).toEqual(['hello']);
    expect(leftovers(root)).toEqual([]);
  }, 600_000);
});
