/**
 * The OCI 1.1 referrers API path of signing: on a registry that has the API
 * (go-containerregistry's registry, see test/helpers/referrers-registry.ts for why not distribution
 * v3), `tsbuild sign` and `tsbuild build --push --sign` attach the Sigstore bundle as a referrer
 * through the API (no `sha256-<hex>` fallback tag), and cosign v3 finds and verifies it there.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../../src/oci/reference.js';
import { push } from '../../../registry/remote/push.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { goTool } from '../../helpers/go-tools.js';
import { randomImage } from '../../helpers/random-image.js';
import { referrersRegistryBinary, startReferrersRegistry, type ReferrersRegistry } from '../../helpers/referrers-registry.js';
import { run, runTsbuild, tsbuildOk, type RunResult } from '../../helpers/tools.js';
import { buildUnavailable } from '../build/harness.js';

const cosign = await goTool('cosign3');
const registry = await referrersRegistryBinary();
const why = firstReason(needBuiltCli(), cosign.skip, registry.skip);
if (why) console.warn(`skip: ${why}`);
const noBuild = why ?? buildUnavailable();
if (noBuild && noBuild !== why) console.warn(`skip: ${noBuild}`);

const PW = 'referrers-pw';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

interface Index {
  manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
}

describe.skipIf(!!why)('signing through the referrers API, judged by cosign v3', () => {
  let reg: ReferrersRegistry;
  let dir = '';

  const cosignRun = (args: string[]): Promise<RunResult> => run(cosign.path!, args, { cwd: dir, env: { HOME: dir, COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined } });
  const tsb = (args: string[]): Promise<RunResult> => runTsbuild(args, { root: join(dir, 'root'), cwd: dir, env: { COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined }, timeout: 300_000 });
  const cosignVerify = (key: string, pinned: string, extra: string[] = []) => cosignRun(['verify', '--key', key, '--insecure-ignore-tlog=true', '--allow-insecure-registry', ...extra, pinned]);
  const referrersOf = async (repo: string, digest: string): Promise<Index> => {
    const res = await fetch(`${reg.url}/v2/${repo}/referrers/${digest}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Index;
  };
  const tags = async (repo: string): Promise<string[]> => ((await (await fetch(`${reg.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;

  beforeAll(async () => {
    reg = await startReferrersRegistry(registry.path!);
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-referrers-'));
    expect((await tsb(['key', 'generate', '--output-key-prefix', 'ts'])).code).toBe(0);
    expect((await tsb(['key', 'generate', '--output-key-prefix', 'other'])).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('tsbuild sign attaches the bundle through the API; cosign v3 verifies it, another key fails', async () => {
    const img = await randomImage({ layers: 1, layerBytes: 1024 });
    let digest: string;
    try {
      digest = (await push(parseReference(`${reg.host}/ref/app:v1`), { store: img.store, descriptor: img.manifest })).digest;
    } finally {
      await img.cleanup();
    }
    // the registry really answers the API (an empty list before signing)
    expect((await referrersOf('ref/app', digest)).manifests).toEqual([]);
    const s = await tsb(['sign', '--key', 'ts.key', '-a', 'env=ci', `${reg.host}/ref/app:v1`]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toContain('(referrers API)');
    const listed = (await referrersOf('ref/app', digest)).manifests;
    expect(listed).toHaveLength(1);
    // the manifest itself names the bundle type (the registry lists the empty config's type)
    const m = (await (await fetch(`${reg.url}/v2/ref/app/manifests/${listed[0]!.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { artifactType: string; subject: { digest: string } };
    expect(m.artifactType).toBe(BUNDLE);
    expect(m.subject.digest).toBe(digest);
    // no referrers tag schema fallback was written: cosign can only have found the bundle through the API
    expect(await tags('ref/app')).not.toContain(digest.replace(':', '-'));

    const pinned = `${reg.host}/ref/app@${digest}`;
    const v = await cosignVerify('ts.pub', pinned, ['-a', 'env=ci']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('https://sigstore.dev/cosign/sign/v1'); // the bundle's statement, not the legacy payload
    expect((await cosignVerify('ts.pub', pinned, ['-a', 'env=prod'])).code).not.toBe(0);
    expect((await cosignVerify('other.pub', pinned)).code).not.toBe(0);

    // tsbuild verify finds the bundle through the API as well (besides the .sig form)
    const t = await tsb(['verify', '--key', 'ts.pub', '--output', 'json', pinned]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('https://sigstore.dev/cosign/sign/v1');
  }, 180_000);

  it.skipIf(!!noBuild)('build --push --sign attaches the bundle through the API; cosign v3 verifies the built image', async () => {
    const root = join(dir, 'root');
    await tsbuildOk(['import', await busyboxRootfs(), 'localhost/test/busybox:latest', '-c', 'CMD ["sh"]'], { root });
    const ctx = mkdtempSync(join(dir, 'ctx-'));
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM localhost/test/busybox:latest\nRUN echo referrers > /r\n');
    const b = await tsb(['build', '--push', '--sign', '--key', 'ts.key', '-t', `${reg.host}/ref/built:v1`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain('(referrers API)');
    const digest = b.stdout.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await referrersOf('ref/built', digest)).manifests).toHaveLength(1);
    const v = await cosignVerify('ts.pub', `${reg.host}/ref/built@${digest}`);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('https://sigstore.dev/cosign/sign/v1');
  }, 300_000);
});
