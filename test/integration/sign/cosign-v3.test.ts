/**
 * cosign v3 (built from the Go module proxy) and tsbuild on the Sigstore bundle form: bundles
 * attached as referrers (here through the referrers tag schema, which Debian's distribution 2.8
 * needs and cosign falls back to), and the legacy `.sig` form that cosign v3 still reads.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../../src/oci/digest.js';
import { parseReference } from '../../../src/oci/reference.js';
import { push } from '../../../registry/remote/push.js';
import { needBuiltCli } from '../../helpers/capabilities.js';
import { goTool } from '../../helpers/go-tools.js';
import { randomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { makeTempDir, removeTempDirs, run, runTsbuild, type RunResult } from '../../helpers/tools.js';

const cosign = await goTool('cosign3');
const why = registrySkipReason() ?? needBuiltCli() ?? cosign.skip;
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('cosign v3 interop (sigstore bundles)', () => {
  let reg: TestRegistry;
  let dir: string;
  const PW = 'v3-pw';
  const images: Record<string, { ref: string; pinned: string; digest: Digest }> = {};

  const cosignRun = (args: string[]): Promise<RunResult> => run(cosign.path!, args, { cwd: dir, env: { HOME: dir, COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined } });
  const tsb = (args: string[]): Promise<RunResult> => runTsbuild(args, { root: join(dir, 'root'), cwd: dir, env: { COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined } });
  const cosignVerify = (key: string, name: string, extra: string[] = []): Promise<RunResult> =>
    cosignRun(['verify', '--key', key, '--insecure-ignore-tlog=true', '--allow-insecure-registry', ...extra, images[name]!.pinned]);

  beforeAll(async () => {
    reg = await startRegistry();
    dir = await makeTempDir('tsbuild-cosign3-');
    for (const n of ['bundle', 'legacy', 'bycosign']) {
      const img = await randomImage({ layers: 1, layerBytes: 1024 });
      try {
        const ref = `${reg.host}/v3/${n}:v1`;
        const d = await push(parseReference(ref), { store: img.store, descriptor: img.manifest });
        images[n] = { ref, pinned: `${reg.host}/v3/${n}@${d.digest}`, digest: d.digest };
      } finally {
        await img.cleanup();
      }
    }
    expect((await tsb(['key', 'generate', '--output-key-prefix', 'ts'])).code).toBe(0);
    const g = await cosignRun(['generate-key-pair', '--output-key-prefix', 'c3']);
    expect(g.code, g.stderr).toBe(0);
    // A signing config without a transparency log or TSA: cosign v3's way to sign offline.
    const sc = await cosignRun(['signing-config', 'create', '--out', join(dir, 'signing-config.json')]);
    expect(sc.code, sc.stderr).toBe(0);
  });

  afterAll(async () => {
    await reg?.stop();
    await removeTempDirs();
  });

  it('cosign v3 verifies a tsbuild bundle (and its annotations) and rejects a wrong key', async () => {
    const s = await tsb(['sign', '--key', 'ts.key', '--new-bundle-format', '-a', 'env=ci', images['bundle']!.ref]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/Attached sigstore bundle/);
    const v = await cosignVerify('ts.pub', 'bundle', ['-a', 'env=ci']);
    expect(v.code, v.stderr).toBe(0);
    // cosign reports the bundle's statement (predicate type cosign/sign/v1), not the legacy payload.
    expect(v.stdout).toContain('https://sigstore.dev/cosign/sign/v1');
    expect((await cosignVerify('ts.pub', 'bundle', ['-a', 'env=prod'])).code).not.toBe(0);
    expect((await cosignVerify('c3.pub', 'bundle')).code).not.toBe(0);
  });

  it('cosign v3 still verifies the legacy .sig form tsbuild writes by default', async () => {
    expect((await tsb(['sign', '--key', 'ts.key', images['legacy']!.ref])).code).toBe(0);
    const v = await cosignVerify('ts.pub', 'legacy');
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('cosign container image signature');
    expect((await cosignVerify('c3.pub', 'legacy')).code).not.toBe(0);
  });

  it('tsbuild verifies a bundle signed by cosign v3 and rejects a wrong key and annotation', async () => {
    const s = await cosignRun(['sign', '--key', 'c3.key', '--signing-config', join(dir, 'signing-config.json'), '--allow-insecure-registry', '-y', '-a', 'who=cosign3', images['bycosign']!.pinned]);
    expect(s.code, s.stderr).toBe(0);
    const v = await tsb(['verify', '--key', 'c3.pub', '-a', 'who=cosign3', '--output', 'json', images['bycosign']!.ref]);
    expect(v.code, v.stderr).toBe(0);
    const out = JSON.parse(v.stdout) as { predicateType: string; subject: { digest: { sha256: string } }[] }[];
    expect(out[0]!.predicateType).toBe('https://sigstore.dev/cosign/sign/v1');
    expect(out[0]!.subject[0]!.digest.sha256).toBe(images['bycosign']!.digest.slice(7));
    expect((await tsb(['verify', '--key', 'ts.pub', images['bycosign']!.ref])).code).toBe(12);
    expect((await tsb(['verify', '--key', 'c3.pub', '-a', 'who=else', images['bycosign']!.ref])).code).toBe(12);
  });
});
