/**
 * Build cache keys by content, through the built CLI: `COPY --from=stage` is found again by the
 * content it copies when something else in that stage changed, and the steps after it continue
 * from that content key (they stay cached too); a touched (mtime-only) context
 * file keeps its COPY cached while a content change runs it; the layer a COPY commits is the
 * snapshot the next step mounts (its files are all there).
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { tsbuildOk } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli());
if (why) console.warn(`skip: ${why}`);

let root = '';
const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

beforeAll(async () => {
  if (why) return;
  root = tmp('tsbuild-content-keys-');
  await tsbuildOk(['import', await busyboxRootfs(), BUSYBOX, '-c', 'CMD ["sh"]'], { root });
}, 120_000);

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** Step name → 'cached' | 'ran' from --progress plain output. */
function states(stderr: string): Map<string, string> {
  const names = new Map<string, string>();
  const out = new Map<string, string>();
  for (const l of stderr.split('\n')) {
    const m = /^(#\d+) (\[.*)$/.exec(l);
    if (m) names.set(m[1]!, m[2]!);
    const s = /^(#\d+) (CACHED|DONE)/.exec(l);
    if (s && names.has(s[1]!)) out.set(names.get(s[1]!)!, s[2] === 'CACHED' ? 'cached' : 'ran');
  }
  return out;
}

describe.skipIf(!!why)('content cache keys', () => {
  it('COPY --from=stage stays cached when another file of that stage changes, and so do the steps after it; runs when the copied file changes', async () => {
    const ctx = tmp('tsbuild-content-keys-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX} AS gen\nCOPY big.txt /big.txt\nCOPY gen.txt /gen.txt\n\nFROM ${BUSYBOX}\nCOPY --from=gen /big.txt /big.txt\nCOPY app.txt /app.txt\n`);
    writeFileSync(join(ctx, 'big.txt'), 'big 1\n'.repeat(1000));
    writeFileSync(join(ctx, 'gen.txt'), 'gen 1\n');
    writeFileSync(join(ctx, 'app.txt'), 'app 1\n');
    const build = async (...flags: string[]) => {
      const r = await tsbuildOk(['build', '--progress', 'plain', ...flags, '-t', 'localhost/ck/app:1', ctx], { root });
      return states(r.stderr);
    };
    const copyFrom = '[stage-1 2/3] COPY --from=gen /big.txt /big.txt';
    const after = '[stage-1 3/3] COPY app.txt /app.txt';
    expect((await build()).get(copyFrom)).toBe('ran');
    writeFileSync(join(ctx, 'gen.txt'), 'gen 2\n');
    const touched = await build();
    expect(touched.get('[gen 3/3] COPY gen.txt /gen.txt')).toBe('ran');
    expect(touched.get(copyFrom)).toBe('cached');
    expect(touched.get(after)).toBe('cached');
    // and so after a --no-cache build
    expect((await build('--no-cache')).get(after)).toBe('ran');
    writeFileSync(join(ctx, 'gen.txt'), 'gen 3\n');
    const again = await build();
    expect(again.get(copyFrom)).toBe('cached');
    expect(again.get(after)).toBe('cached');
    writeFileSync(join(ctx, 'big.txt'), 'big 2\n'.repeat(1000));
    writeFileSync(join(ctx, 'app.txt'), 'app 2\n');
    expect((await build()).get(copyFrom)).toBe('ran');
    const out = await tsbuildOk(['run', '--rm', 'localhost/ck/app:1', 'sh', '-c', 'head -1 /big.txt; cat /app.txt'], { root });
    expect(out.stdout).toBe('big 2\napp 2\n');
  }, 180_000);

  it('an mtime-only touch of a copied context file keeps the COPY cached; a same-size content change runs it; the next step sees every copied file', async () => {
    const ctx = tmp('tsbuild-content-keys-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nCOPY files/ /files/\nRUN ls /files | wc -l > /count && cat /files/f7.txt > /seven\n`);
    const files = join(ctx, 'files');
    mkdirSync(files);
    for (let i = 0; i < 20; i++) writeFileSync(join(files, `f${i}.txt`), `file ${i}\n`);
    const build = async () => states((await tsbuildOk(['build', '--progress', 'plain', '-t', 'localhost/ck/touch:1', ctx], { root })).stderr);
    const copy = '[2/3] COPY files/ /files/';
    expect((await build()).get(copy)).toBe('ran');
    const t = new Date(Date.now() - 3600_000);
    utimesSync(join(files, 'f7.txt'), t, t);
    expect((await build()).get(copy)).toBe('cached');
    writeFileSync(join(files, 'f7.txt'), 'FILE 7\n');
    utimesSync(join(files, 'f7.txt'), t, t);
    const changed = await build();
    expect(changed.get(copy)).toBe('ran');
    expect(changed.get('[3/3] RUN ls /files | wc -l > /count && cat /files/f7.txt > /seven')).toBe('ran');
    const out = await tsbuildOk(['run', '--rm', 'localhost/ck/touch:1', 'sh', '-c', 'cat /count /seven'], { root });
    expect(out.stdout.replace(/[ \t]+/g, '')).toBe('20\nFILE7\n');
  }, 180_000);
});
