/**
 * `tsbuild build --cache-to/--cache-from type=registry` end to end through the built CLI and a
 * real registry (distribution 2.8): a second machine (a fresh store with only the same base)
 * reuses every step of the first, byte for byte; mode=min vs max; a changed COPY source;
 * a missing cache; a refused export; and what skopeo says about the cache manifest.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { parseReference } from '../../../src/oci/reference.js';
import { RegistryCacheSource } from '../../../registry/cache/registry-cache.js';
import { firstReason, needBuiltCli, needTool } from '../../helpers/capabilities.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { run, runTsbuild, tsbuildOk, type RunResult } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX, makeStore, unpackImage } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli(), registrySkipReason());
if (why) console.warn(`skip: ${why}`);
const skopeo = needTool('skopeo');
if (skopeo) console.warn(`skip (skopeo): ${skopeo}`);

// A tool stage only feeds COPY --from (its steps are exported with mode=max only); the RUN
// outputs are time-dependent, so equal bytes prove a layer came from the cache.
const DOCKERFILE = `FROM ${BUSYBOX} AS tool
RUN date +%s%N > /tool-stamp
FROM ${BUSYBOX}
COPY a.txt /a.txt
RUN date +%s%N > /stamp && cat /a.txt >> /stamp
COPY --from=tool /tool-stamp /tool-stamp
COPY b.txt /b.txt
`;

/** Step name → 'cached' or 'ran', from `--progress=plain` output. */
function states(r: RunResult): Map<string, 'cached' | 'ran'> {
  const lines = r.stderr.split('\n');
  const out = new Map<string, 'cached' | 'ran'>();
  for (const l of lines) {
    const m = /^(#\d+) (\[.*)$/.exec(l);
    if (!m || m[2]!.includes(' FROM ') || !/\] (RUN|COPY)/.test(m[2]!)) continue;
    out.set(m[2]!, lines.includes(`${m[1]} CACHED`) ? 'cached' : 'ran');
  }
  return out;
}

describe.skipIf(!!why)('build --cache-to / --cache-from type=registry', () => {
  let reg: TestRegistry;
  let home = '';
  const temps: string[] = [];
  const tmp = (p: string) => {
    const d = mkdtempSync(join(tmpdir(), p));
    temps.push(d);
    return d;
  };
  /** A fresh store with only the busybox base (same digest in every store). */
  const machine = async () => {
    const { root } = await makeStore();
    temps.push(root);
    return root;
  };
  const env = () => ({ ...process.env, HOME: home, DOCKER_CONFIG: join(home, '.docker'), XDG_RUNTIME_DIR: join(home, 'run'), REGISTRY_AUTH_FILE: '' });
  const tsb = (root: string, args: string[]) => tsbuildOk(args, { root, env: env() });
  const ctx = tmp('tsbuild-cache-ctx-');
  let rootA = '';
  let imageA = '';
  let ref = (tag: string) => tag;

  /** The image's rootfs files we look at. */
  const files = async (root: string, name: string) => {
    const store = await ImageStore.open(root);
    const { image, record } = await store.imageFor(name);
    const dir = tmp('tsbuild-cache-unpack-');
    await unpackImage(image, dir);
    return { digest: record.descriptor.digest, stamp: readFileSync(join(dir, 'stamp'), 'utf8'), tool: readFileSync(join(dir, 'tool-stamp'), 'utf8'), b: readFileSync(join(dir, 'b.txt'), 'utf8'), layers: (await image.manifest()).layers.map((l) => l.digest) };
  };

  beforeAll(async () => {
    if (why) return;
    reg = await startRegistry();
    ref = (tag: string) => `${reg.host}/cache/app:${tag}`;
    home = tmp('tsbuild-cache-home-');
    writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
    writeFileSync(join(ctx, 'a.txt'), 'a\n');
    writeFileSync(join(ctx, 'b.txt'), 'b\n');
    rootA = await machine();
    const a = await tsb(rootA, ['build', '--progress=plain', '-t', 'localhost/cache/app:a', '--cache-to', `type=registry,ref=${ref('max')},mode=max`, '--cache-to', `type=registry,ref=${ref('min')}`, ctx]);
    expect(a.stderr).toContain(`exporting cache to ${ref('max')} (mode=max)`);
    expect(a.stderr).toContain(`exporting cache to ${ref('min')} (mode=min)`);
    imageA = 'localhost/cache/app:a';
  }, 240_000);

  afterAll(async () => {
    await reg?.stop();
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  });

  it('an empty store reuses every step through the registry: same bytes, same image; intermediate layers are never pulled', async () => {
    const rootB = await machine();
    const b = await tsb(rootB, ['build', '--progress=plain', '-t', 'localhost/cache/app:b', '--cache-from', `type=registry,ref=${ref('max')}`, ctx]);
    const st = states(b);
    expect([...st.values()]).toEqual(['cached', 'cached', 'cached', 'cached', 'cached']);
    const fa = await files(rootA, imageA);
    const fb = await files(rootB, 'localhost/cache/app:b');
    expect(fb.stamp).toBe(fa.stamp);
    expect(fb.tool).toBe(fa.tool);
    expect(fb.digest).toBe(fa.digest);
    expect(fb.layers).toEqual(fa.layers);
    // lazily: the tool stage's layer (only in the max cache) was never downloaded to B
    const src = new RegistryCacheSource(parseReference(ref('max')));
    const records = await src.load().finally(() => src.close());
    const cacheBlobs = new Set(records.flatMap((r) => (r.layer ? [r.layer.descriptor.digest] : [])));
    const storeB = await ImageStore.open(rootB);
    const toolLayers = [...cacheBlobs].filter((d) => !fa.layers.includes(d));
    expect(toolLayers.length).toBe(1);
    expect(await storeB.content.has(toolLayers[0]!)).toBe(false);
    // B exports what it used (to another repository) without having the tool layer: it is mounted from the source
    await tsb(rootB, ['build', '--progress=plain', '--cache-from', ref('max'), '--cache-to', `type=registry,ref=${reg.host}/cache/other:max,mode=max`, ctx]);
    const again = new RegistryCacheSource(parseReference(`${reg.host}/cache/other:max`));
    expect(await again.load().finally(() => again.close())).toEqual(records);
    expect(await storeB.content.has(toolLayers[0]!)).toBe(false);
  }, 240_000);

  it('mode=min exports only the final stage chain: the tool stage runs again, the rest is cached', async () => {
    const src = (tag: string) => new RegistryCacheSource(parseReference(ref(tag)));
    const min = src('min');
    const max = src('max');
    const [rMin, rMax] = await Promise.all([min.load().finally(() => min.close()), max.load().finally(() => max.close())]);
    expect(rMin.length).toBe(4);
    expect(rMax.length).toBe(5);
    const minKeys = new Set(rMin.map((r) => r.key));
    expect(rMax.filter((r) => !minKeys.has(r.key)).length).toBe(1);
    const rootC = await machine();
    const c = await tsb(rootC, ['build', '--progress=plain', '-t', 'localhost/cache/app:c', '--cache-from', `type=registry,ref=${ref('min')}`, ctx]);
    const st = states(c);
    expect(st.get('[tool 2/2] RUN date +%s%N > /tool-stamp')).toBe('ran');
    expect([...st.entries()].filter(([k]) => !k.startsWith('[tool')).map(([, v]) => v)).toEqual(['cached', 'cached', 'cached', 'cached']);
    const fa = await files(rootA, imageA);
    const fc = await files(rootC, 'localhost/cache/app:c');
    expect(fc.digest).toBe(fa.digest);
  }, 240_000);

  it('a changed COPY source: the steps before it hit, the ones from it on run (on top of pulled cached layers)', async () => {
    const ctx2 = tmp('tsbuild-cache-ctx-');
    cpSync(ctx, ctx2, { recursive: true });
    writeFileSync(join(ctx2, 'b.txt'), 'changed\n');
    const rootD = await machine();
    const d = await tsb(rootD, ['build', '--progress=plain', '-t', 'localhost/cache/app:d', '--cache-from', `type=registry,ref=${ref('max')}`, ctx2]);
    // (a Map: the two stages run concurrently, their lines come in either order)
    expect(states(d)).toEqual(
      new Map([
        ['[tool 2/2] RUN date +%s%N > /tool-stamp', 'cached'],
        ['[stage-1 2/5] COPY a.txt /a.txt', 'cached'],
        ['[stage-1 3/5] RUN date +%s%N > /stamp && cat /a.txt >> /stamp', 'cached'],
        ['[stage-1 4/5] COPY --from=tool /tool-stamp /tool-stamp', 'cached'],
        ['[stage-1 5/5] COPY b.txt /b.txt', 'ran'],
      ]),
    );
    const fa = await files(rootA, imageA);
    const fd = await files(rootD, 'localhost/cache/app:d');
    expect(fd.stamp).toBe(fa.stamp);
    expect(fd.b).toBe('changed\n');
    expect(fd.layers.slice(0, -1)).toEqual(fa.layers.slice(0, -1));
    expect(fd.layers.at(-1)).not.toBe(fa.layers.at(-1));
  }, 240_000);

  it('a missing cache is a warning and the build goes on; a refused export fails naming the ref and status (unless ignore-error=true)', async () => {
    const rootE = await machine();
    const e = await tsb(rootE, ['build', '--progress=plain', '--cache-from', `type=registry,ref=${ref('nothing-here')}`, ctx]);
    expect(e.stderr).toContain(`WARNING: importing cache from ${ref('nothing-here')}: manifest unknown (404 MANIFEST_UNKNOWN) (continuing without this cache)`);
    const authReg = await startRegistry({ auth: 'htpasswd', users: [{ username: 'u', password: 'p' }] });
    try {
      const target = `${authReg.host}/cache/app:x`;
      const bad = await runTsbuild(['build', '--progress=plain', '--cache-to', `type=registry,ref=${target}`, ctx], { root: rootE, env: env() });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain(`tsbuild: exporting cache to ${target}: `);
      expect(bad.stderr).toMatch(/401/);
      const ignored = await tsb(rootE, ['build', '--progress=plain', '--cache-to', `type=registry,ref=${target},ignore-error=true`, ctx]);
      expect(ignored.stderr).toContain(`WARNING: exporting cache to ${target} failed (ignored): `);
    } finally {
      await authReg.stop();
    }
    const usage = await runTsbuild(['build', '--cache-to', 'type=local,dest=/x', ctx], { root: rootE, env: env() });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--cache-to type=local is not supported');
  }, 240_000);

  it.skipIf(!!skopeo)('skopeo reads the cache manifest and copies the cache to an OCI layout', async () => {
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref('max')}`]);
    expect(raw.code, raw.stderr).toBe(0);
    const m = JSON.parse(raw.stdout) as { artifactType: string; config: { mediaType: string }; layers: { digest: string }[] };
    expect(m.artifactType).toBe('application/vnd.tsbuild.cache.v1+json');
    expect(m.config.mediaType).toBe('application/vnd.tsbuild.cache.config.v1+json');
    const out = join(tmp('tsbuild-cache-skopeo-'), 'layout');
    const cp = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref('max')}`, `oci:${out}:cache`]);
    expect(cp.code, cp.stderr).toBe(0);
    for (const l of m.layers) expect(readFileSync(join(out, 'blobs', 'sha256', l.digest.slice(7))).length).toBeGreaterThan(0);
  }, 120_000);
});
