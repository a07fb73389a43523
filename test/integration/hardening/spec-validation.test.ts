/**
 * Everything the builder writes for the whole corpus (testdata/build) is valid OCI: each case is
 * built through the CLI with `--output type=oci,tar=false` (and, for one case, `tsbuild save` and
 * an OCI archive), then every JSON document in the layout — index.json, oci-layout, manifests,
 * configs — is checked against the image-spec v1.1 JSON schemas, `oci-image-tool validate`
 * accepts the layout, and `umoci unpack` unpacks it.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { ociSchemas, type SchemaKind } from '../../helpers/oci-schemas.js';
import { run, tsbuildOk } from '../../helpers/tools.js';
import { BUSYBOX, CASES } from '../build/harness.js';

const schemas = ociSchemas();
const why = firstReason(needRoot(), needOverlay(), needBuiltCli(), schemas.why || undefined, needTool('oci-image-tool'), needTool('umoci'));
if (why) console.warn(`skip: ${why}`);

/** Cases that fail on purpose, need the Debian base, or are contexts for other tests. */
const NOT_IMAGES = new Set(['fail-run', 'missing-copy', 'debian-apt', 'differential', 'dockerignore']);
/** Extra build flags some cases need. */
const FLAGS: Record<string, (dir: string) => string[]> = {
  mounts: (d) => ['--secret', `id=token,src=${join(d, 'secret')}`],
  'mount-types': (d) => ['--secret', `id=token,src=${join(d, 'secret')}`],
  'arg-scoping': () => ['--build-arg', 'FLAVOUR=from-cli'],
};

const temps: string[] = [];
function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
let root = '';

beforeAll(async () => {
  if (why) return;
  root = tmp('tsbuild-specval-');
  await tsbuildOk(['import', await busyboxRootfs(), BUSYBOX, '-c', 'CMD ["sh"]'], { root });
}, 120_000);

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** Schema-checks every document reachable from index.json; returns the violations, named. */
function validateLayout(layout: string): string[] {
  const bad: string[] = [];
  const check = (kind: SchemaKind, doc: unknown, where: string) => {
    for (const v of schemas.schemas!.validate(kind, doc, where)) bad.push(`${v.field}: ${v.message}`);
  };
  const blob = (digest: string) => JSON.parse(readFileSync(join(layout, 'blobs', ...digest.split(':')), 'utf8')) as Record<string, unknown>;
  check('layout', JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8')), 'oci-layout');
  const walk = (doc: Record<string, unknown>, kind: 'index' | 'manifest', where: string) => {
    check(kind, doc, where);
    if (kind === 'index') {
      for (const [i, m] of ((doc.manifests ?? []) as { mediaType: string; digest: string }[]).entries()) {
        const child = blob(m.digest);
        walk(child, m.mediaType.includes('index') || m.mediaType.includes('manifest.list') ? 'index' : 'manifest', `${where}.manifests[${i}]`);
      }
    } else {
      const cfg = doc.config as { mediaType: string; digest: string };
      // the schema covers image configs; other artifacts' configs are opaque
      if (cfg.mediaType.endsWith('image.config.v1+json') || cfg.mediaType.endsWith('container.image.v1+json')) check('config', blob(cfg.digest), `${where}.config`);
    }
  };
  walk(JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as Record<string, unknown>, 'index', 'index.json');
  return bad;
}

async function peersAccept(layout: string, tag: string): Promise<void> {
  const v = await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, layout]);
  expect(v.stdout + v.stderr, `oci-image-tool on ${tag}`).toContain('Validation succeeded');
  const bundle = join(tmp('tsbuild-specval-umoci-'), 'b');
  const u = await run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  expect(u.code, `umoci unpack ${tag}: ${u.stderr}`).toBe(0);
  expect(existsSync(join(bundle, 'config.json'))).toBe(true);
}

describe.skipIf(!!why)('OCI validity of build outputs (whole corpus)', () => {
  // onbuild is two contexts: the parent (tagged as the child's base) first
  const cases = existsSync(CASES) ? readdirSync(CASES).filter((c) => !NOT_IMAGES.has(c)).flatMap((c) => (c === 'onbuild' ? ['onbuild/parent', 'onbuild/child'] : [c])).sort((a, b) => (a === 'onbuild/parent' ? -1 : b === 'onbuild/parent' ? 1 : a < b ? -1 : 1)) : [];

  it('the corpus has the cases the issue asks for', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  for (const name of cases) {
    it(`${name}: schemas, oci-image-tool validate, umoci unpack`, async () => {
      const extra = tmp('tsbuild-specval-extra-');
      writeFileSync(join(extra, 'secret'), 'not-in-any-layer');
      const out = tmp('tsbuild-specval-out-');
      const layout = join(out, 'layout');
      if (name === 'onbuild/parent') await tsbuildOk(['build', '-q', '-t', 'localhost/test/onbuild-parent:latest', join(CASES, name)], { root });
      await tsbuildOk(['build', '-q', '--no-cache', ...(FLAGS[name]?.(extra) ?? []), '-t', `localhost/specval/${name.replace('/', '-')}:1`, '-o', `type=oci,dest=${layout},tar=false`, join(CASES, name)], { root });
      expect(validateLayout(layout), `schema violations in ${name}`).toEqual([]);
      const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
      const tag = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'];
      expect(tag, 'the layout names the image').toBeTruthy();
      await peersAccept(layout, tag!);
    }, 180_000);
  }

  it('tsbuild save (docker and oci formats; both are OCI layouts inside) passes the same checks', async () => {
    // an --output other than the store does not tag: build into the store first
    await tsbuildOk(['build', '-q', '-t', 'localhost/specval/multistage:1', join(CASES, 'multistage')], { root });
    for (const format of ['docker', 'oci']) {
      const out = tmp('tsbuild-specval-save-');
      const tarball = join(out, 'img.tar');
      await tsbuildOk(['save', '--format', format, '-o', tarball, 'localhost/specval/multistage:1'], { root });
      const layout = join(out, 'layout');
      const r = await run('tar', ['-C', out, '--one-top-level=layout', '-xf', tarball]);
      expect(r.code, r.stderr).toBe(0);
      expect(validateLayout(layout), `save --format ${format}`).toEqual([]);
      const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
      const tag = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'];
      expect(tag, `save --format ${format} names the image`).toBeTruthy();
      await peersAccept(layout, tag!);
    }
  }, 120_000);
});
