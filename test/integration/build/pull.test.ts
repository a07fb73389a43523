/**
 * `tsbuild build` resolves base images through the registry client: a base missing from the
 * store is pulled (and recorded under its name), `--pull` re-resolves tags and picks up a changed
 * digest, `@digest` bases are honoured, an unknown image fails naming the ref with nothing tagged.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { runTsbuild, tsbuildOk } from '../../helpers/tools.js';
import { buildUnavailable } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli(), registrySkipReason());
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

describe.skipIf(!!why)('build pulls base images through the registry', () => {
  let reg: TestRegistry;
  let src = '';
  let ref = '';
  let firstDigest = '';

  /** Imports busybox with `changes` into the source store and pushes it as `ref`; returns the pushed digest. */
  const push = async (changes: string[]): Promise<string> => {
    const args = ['import', await busyboxRootfs(), ref];
    for (const c of changes) args.push('-c', c);
    await tsbuildOk(args, { root: src });
    return (await tsbuildOk(['push', '-q', ref], { root: src })).stdout.trim();
  };

  beforeAll(async () => {
    if (why) return;
    reg = await startRegistry();
    src = tmp('tsbuild-build-pull-src-');
    ref = `${reg.host}/pull/busybox:latest`;
    firstDigest = await push(['ENV GEN=one', 'CMD ["sh"]']);
  }, 120_000);

  afterAll(async () => {
    await reg?.stop();
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  });

  const ctxWith = (dockerfile: string) => {
    const ctx = tmp('tsbuild-build-pull-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
    return ctx;
  };

  it('pulls a missing base (printing the pull), records it, then builds on it; --pull picks up a re-pushed image', async () => {
    const root = tmp('tsbuild-build-pull-');
    const ctx = ctxWith(`FROM ${reg.host}/pull/busybox\nRUN echo "gen=$GEN" > /gen\n`);
    const first = await tsbuildOk(['build', '--progress=plain', '-t', 'localhost/pulled/app', ctx], { root });
    expect(first.stderr).toContain(`[internal] pull ${ref}`);
    expect(first.stderr).toMatch(/pulled 127\.0\.0\.1:\d+\/pull\/busybox:latest: sha256:[0-9a-f]{64}/);
    const images = (await tsbuildOk(['images'], { root })).stdout;
    expect(images).toContain(`${reg.host}/pull/busybox`);
    expect((await tsbuildOk(['run', '--rm', 'localhost/pulled/app', 'cat', '/gen'], { root })).stdout).toBe('gen=one\n');

    // the registry's image changes; without --pull the store copy is used (no registry access)
    await push(['ENV GEN=two', 'CMD ["sh"]']);
    const again = await tsbuildOk(['build', '--progress=plain', '-t', 'localhost/pulled/app', ctx], { root });
    expect(again.stderr).not.toContain('[internal] pull');
    expect(again.stderr).toContain('CACHED');
    expect((await tsbuildOk(['run', '--rm', 'localhost/pulled/app', 'cat', '/gen'], { root })).stdout).toBe('gen=one\n');

    // --pull re-resolves the tag: new digest, new base, the RUN reruns
    const pulled = await tsbuildOk(['build', '--pull', '--progress=plain', '-t', 'localhost/pulled/app', ctx], { root });
    expect(pulled.stderr).toMatch(/resolve 127\.0\.0\.1:\d+\/pull\/busybox:latest: sha256:[0-9a-f]{64} \(was sha256:/);
    expect(pulled.stderr).not.toContain('CACHED');
    expect((await tsbuildOk(['run', '--rm', 'localhost/pulled/app', 'cat', '/gen'], { root })).stdout).toBe('gen=two\n');

    // --pull again: the digest is unchanged, the store copy is used and the steps are cached
    const same = await tsbuildOk(['build', '--pull', '--progress=plain', '-t', 'localhost/pulled/app', ctx], { root });
    expect(same.stderr).toContain('(unchanged, using the local copy)');
    expect(same.stderr).toContain('CACHED');
    expect((await tsbuildOk(['fsck'], { root })).code).toBe(0);
  }, 180_000);

  it('honours a base pinned by @digest (the older image, even after the tag moved)', async () => {
    expect(firstDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const root = tmp('tsbuild-build-pull-digest-');
    const ctx = ctxWith(`FROM ${reg.host}/pull/busybox@${firstDigest}\nRUN echo "gen=$GEN" > /gen\n`);
    await tsbuildOk(['build', '--progress=plain', '-t', 'localhost/pinned/app', ctx], { root });
    expect((await tsbuildOk(['run', '--rm', 'localhost/pinned/app', 'cat', '/gen'], { root })).stdout).toBe('gen=one\n');
    // --pull with a digest reference needs no registry round trip (a digest cannot move)
    const again = await tsbuildOk(['build', '--pull', '--progress=plain', '-t', 'localhost/pinned/app', ctx], { root });
    expect(again.stderr).not.toContain('[internal] pull');
  }, 120_000);

  it('an unknown image fails naming the ref and the registry status; nothing is tagged', async () => {
    const root = tmp('tsbuild-build-pull-unknown-');
    const ctx = ctxWith(`FROM ${reg.host}/pull/nothing-here:v1\nRUN true\n`);
    const r = await runTsbuild(['build', '--progress=plain', '-t', 'localhost/never/app', ctx], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`base image ${reg.host}/pull/nothing-here:v1 not found: pulling ${reg.host}/pull/nothing-here:v1: manifest unknown (404`);
    expect(r.stderr).toMatch(/manifest unknown|MANIFEST_UNKNOWN|NAME_UNKNOWN|404/i);
    const images = await tsbuildOk(['images', '-a', '--format', 'json'], { root });
    expect(images.stdout.trim()).toMatch(/^(\[\])?$/);
  }, 120_000);
});
