/**
 * tsbuild's signatures and attestations judged by the real cosign (built from the Go module proxy
 * by test/helpers/go-tools.ts), and cosign's judged by tsbuild, against Debian's docker-registry.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../../src/oci/digest.js';
import { parseReference, withTag } from '../../../src/oci/reference.js';
import { readPrivateKey } from '../../../src/sign/keys.js';
import { dockerReference, simpleSigningPayload } from '../../../src/sign/payload.js';
import { appendSignatureLayers, signatureLayer, signatureTag } from '../../../src/sign/signatures.js';
import { readAll } from '../../../src/util/streams.js';
import { remoteHead, remoteImage } from '../../../registry/remote/image.js';
import { push } from '../../../registry/remote/push.js';
import { needBuiltCli } from '../../helpers/capabilities.js';
import { goTool } from '../../helpers/go-tools.js';
import { randomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { makeTempDir, removeTempDirs, run, runTsbuild, type RunResult } from '../../helpers/tools.js';

const cosign = await goTool('cosign');
const why = registrySkipReason() ?? needBuiltCli() ?? cosign.skip;
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('cosign interop', () => {
  let reg: TestRegistry;
  let dir: string;
  let home: string;
  const images: Record<string, { ref: string; digest: Digest }> = {};
  const PW = 'tsbuild-pw';

  async function pushRandom(repo: string): Promise<{ ref: string; digest: Digest }> {
    const img = await randomImage({ layers: 1, layerBytes: 2048 });
    try {
      const ref = `${reg.host}/${repo}:v1`;
      const d = await push(parseReference(ref), { store: img.store, descriptor: img.manifest });
      return { ref, digest: d.digest };
    } finally {
      await img.cleanup();
    }
  }

  function cosignRun(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    return run(cosign.path!, args, { env: { HOME: home, COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined, ...env }, cwd: dir });
  }
  function tsb(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    return runTsbuild(args, { root: join(dir, 'root'), env: { COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined, ...env }, cwd: dir });
  }
  const cosignVerify = (key: string, image: string, extra: string[] = []): Promise<RunResult> =>
    cosignRun(['verify', '--key', key, '--insecure-ignore-tlog=true', '--allow-insecure-registry', ...extra, image]);
  const at = (name: string): string => `${images[name]!.ref.replace(/:v1$/, '')}@${images[name]!.digest}`;

  async function sigTagExists(name: string): Promise<boolean> {
    const r = parseReference(images[name]!.ref);
    try {
      await remoteHead(withTag(r, signatureTag(images[name]!.digest)));
      return true;
    } catch {
      return false;
    }
  }

  beforeAll(async () => {
    reg = await startRegistry();
    dir = await makeTempDir('tsbuild-sign-');
    home = await makeTempDir('tsbuild-sign-home-');
    for (const n of ['app', 'other', 'forged', 'bare', 'att', 'repo', 'badpw']) images[n] = await pushRandom(`demo/${n}`);
    const g = await tsb(['key', 'generate', '--output-key-prefix', 'ts']);
    expect(g.code, g.stderr).toBe(0);
    const c = await cosignRun(['generate-key-pair']);
    expect(c.code, c.stderr).toBe(0);
    const w = await cosignRun(['generate-key-pair', '--output-key-prefix', 'wrong']);
    expect(w.code, w.stderr).toBe(0);
  });

  afterAll(async () => {
    await reg?.stop();
    await removeTempDirs();
  });

  it('tsbuild sign → cosign verify passes; cosign sign → tsbuild verify passes; both signatures kept', async () => {
    const s = await tsb(['sign', '--key', 'ts.key', '-a', 'team=core', images['app']!.ref]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain(signatureTag(images['app']!.digest));
    const v = await cosignVerify('ts.pub', at('app'));
    expect(v.code, v.stderr).toBe(0);
    const payloads = JSON.parse(v.stdout) as { critical: { image: { 'docker-manifest-digest': string } }; optional: Record<string, string> }[];
    expect(payloads[0]!.critical.image['docker-manifest-digest']).toBe(images['app']!.digest);
    expect(payloads[0]!.optional).toEqual({ team: 'core' });
    expect((await cosignVerify('ts.pub', at('app'), ['-a', 'team=core'])).code).toBe(0);
    expect((await cosignVerify('ts.pub', at('app'), ['-a', 'team=other'])).code).not.toBe(0);

    const cs = await cosignRun(['sign', '--key', 'cosign.key', '--tlog-upload=false', '--allow-insecure-registry', '-y', '-a', 'by=cosign', at('app')]);
    expect(cs.code, cs.stderr).toBe(0);
    const tv = await tsb(['verify', '--key', 'cosign.pub', '--output', 'json', '-a', 'by=cosign', images['app']!.ref]);
    expect(tv.code, tv.stderr).toBe(0);
    expect(JSON.parse(tv.stdout)).toHaveLength(1);
    // Both signatures are in the .sig image and each verifies with its own key in both tools.
    const sigImg = await remoteImage(withTag(parseReference(images['app']!.ref), signatureTag(images['app']!.digest)));
    const m = await sigImg.manifest();
    expect(m.layers).toHaveLength(2);
    expect((await tsb(['verify', '--key', 'ts.pub', images['app']!.ref])).code).toBe(0);
    expect((await cosignVerify('cosign.pub', at('app'))).code).toBe(0);
    expect((await cosignVerify('ts.pub', at('app'))).code).toBe(0);

    // cosign's payload bytes are exactly what tsbuild builds for the same claims.
    const cosignLayer = m.layers[1]!;
    const blob = await readAll(await (await sigImg.layerByDigest(cosignLayer.digest)).compressed());
    const ref = parseReference(images['app']!.ref);
    expect(blob.toString()).toBe(simpleSigningPayload(dockerReference(ref), images['app']!.digest, { by: 'cosign' }).toString());
  });

  it('a second tsbuild signature is appended, and the same signature twice is not duplicated', async () => {
    const before = (await (await remoteImage(withTag(parseReference(images['app']!.ref), signatureTag(images['app']!.digest)))).manifest()).layers.length;
    expect((await tsb(['sign', '--key', 'ts.key', '-a', 'n=2', images['app']!.ref])).code).toBe(0);
    expect((await tsb(['sign', '--key', 'ts.key', '-a', 'n=2', `${images['app']!.ref.replace(/:v1$/, '')}@${images['app']!.digest}`])).code).toBe(0);
    const after = (await (await remoteImage(withTag(parseReference(images['app']!.ref), signatureTag(images['app']!.digest)))).manifest()).layers.length;
    expect(after).toBe(before + 1);
    expect((await cosignVerify('ts.pub', at('app'), ['-a', 'n=2'])).code).toBe(0);
    expect((await tsb(['verify', '--key', 'ts.pub', '-a', 'n=2', images['app']!.ref])).code).toBe(0);
  });

  it('tampering fails in both tools: signature moved, payload edited, wrong key, no signatures', async () => {
    // signature moved to another image: app's .sig manifest pushed as other's .sig
    const appSig = await remoteImage(withTag(parseReference(images['app']!.ref), signatureTag(images['app']!.digest)));
    const otherRef = parseReference(images['other']!.ref);
    await push(withTag(otherRef, signatureTag(images['other']!.digest)), appSig);
    const t1 = await tsb(['verify', '--key', 'ts.pub', images['other']!.ref]);
    expect(t1.code).toBe(12);
    expect(t1.stderr).toMatch(/no matching signatures.*digest/);
    expect((await cosignVerify('ts.pub', at('other'))).code).not.toBe(0);

    // payload edited to name the forged image, original signature kept
    const signer = await readPrivateKey(await readFile(join(dir, 'ts.key')), () => PW);
    const forgedRef = parseReference(images['forged']!.ref);
    const real = await signatureLayer(signer, dockerReference(forgedRef), images['app']!.digest);
    const edited = Buffer.from(Buffer.from(real.blob).toString().replace(images['app']!.digest, images['forged']!.digest));
    await push(withTag(forgedRef, signatureTag(images['forged']!.digest)), appendSignatureLayers(undefined, [{ ...real, blob: edited }]));
    const t2 = await tsb(['verify', '--key', 'ts.pub', images['forged']!.ref]);
    expect(t2.code).toBe(12);
    expect(t2.stderr).toMatch(/invalid signature/);
    expect((await cosignVerify('ts.pub', at('forged'))).code).not.toBe(0);

    // wrong key
    const t3 = await tsb(['verify', '--key', 'wrong.pub', images['app']!.ref]);
    expect(t3.code).toBe(12);
    expect((await cosignVerify('wrong.pub', at('app'))).code).not.toBe(0);

    // no signatures at all
    const t4 = await tsb(['verify', '--key', 'ts.pub', images['bare']!.ref]);
    expect(t4.code).toBe(10);
    expect(t4.stderr).toMatch(/no signatures found/);
    expect((await cosignVerify('ts.pub', at('bare'))).code).not.toBe(0);

    // image that does not exist
    const t5 = await tsb(['verify', '--key', 'ts.pub', `${reg.host}/demo/missing:v1`]);
    expect(t5.code).toBe(11);
    expect(t5.stderr).toMatch(/not found/);
  });

  it('tsbuild attest → cosign verify-attestation passes; cosign attest → tsbuild verify-attestation passes', async () => {
    const prov = { builder: { id: 'https://example.com/tsbuild' }, buildType: 'https://example.com/dockerfile@v1', invocation: { configSource: {} }, materials: [] };
    await writeFile(join(dir, 'prov.json'), JSON.stringify(prov));
    await writeFile(join(dir, 'sbom.json'), JSON.stringify({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'x', packages: [] }));
    const a = await tsb(['attest', '--key', 'ts.key', '--type', 'slsaprovenance', '--predicate', 'prov.json', images['att']!.ref]);
    expect(a.code, a.stderr).toBe(0);
    const a2 = await tsb(['attest', '--key', 'ts.key', '--type', 'spdxjson', '--predicate', 'sbom.json', images['att']!.ref]);
    expect(a2.code, a2.stderr).toBe(0);
    const cva = (key: string, type: string): Promise<RunResult> =>
      cosignRun(['verify-attestation', '--key', key, '--type', type, '--insecure-ignore-tlog=true', '--allow-insecure-registry', at('att')]);
    const ok = await cva('ts.pub', 'slsaprovenance');
    expect(ok.code, ok.stderr).toBe(0);
    expect((await cva('ts.pub', 'spdxjson')).code).toBe(0);
    expect((await cva('wrong.pub', 'slsaprovenance')).code).not.toBe(0);
    expect((await cva('ts.pub', 'cyclonedx')).code).not.toBe(0);

    const ca = await cosignRun(['attest', '--key', 'cosign.key', '--type', 'custom', '--predicate', 'prov.json', '--tlog-upload=false', '--allow-insecure-registry', '-y', at('att')]);
    expect(ca.code, ca.stderr).toBe(0);
    const tv = await tsb(['verify-attestation', '--key', 'cosign.pub', '--type', 'custom', images['att']!.ref]);
    expect(tv.code, tv.stderr).toBe(0);
    expect((await tsb(['verify-attestation', '--key', 'ts.pub', '--type', 'slsaprovenance', images['att']!.ref])).code).toBe(0);
    expect((await tsb(['verify-attestation', '--key', 'ts.pub', '--type', 'cyclonedx', images['att']!.ref])).code).toBe(12);
    expect((await tsb(['verify-attestation', '--key', 'wrong.pub', '--type', 'slsaprovenance', images['att']!.ref])).code).toBe(12);
    // an attestation does not verify for another image
    expect((await tsb(['verify-attestation', '--key', 'ts.pub', '--type', 'slsaprovenance', images['other']!.ref])).code).toBe(10);
  });

  it('COSIGN_REPOSITORY stores signatures elsewhere, and cosign finds them there', async () => {
    const env = { COSIGN_REPOSITORY: `${reg.host}/demo/signatures` };
    const s = await tsb(['sign', '--key', 'ts.key', images['repo']!.ref], env);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain(`${reg.host}/demo/signatures:${signatureTag(images['repo']!.digest)}`);
    expect(await sigTagExists('repo')).toBe(false);
    expect((await cosignRun(['verify', '--key', 'ts.pub', '--insecure-ignore-tlog=true', '--allow-insecure-registry', at('repo')], env)).code).toBe(0);
    expect((await tsb(['verify', '--key', 'ts.pub', images['repo']!.ref], env)).code).toBe(0);
  });

  it('bad input: wrong password, corrupt key, missing image give a clear error and push nothing', async () => {
    const wrong = await tsb(['sign', '--key', 'ts.key', images['badpw']!.ref], { COSIGN_PASSWORD: 'nope' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/ts\.key: decryption failed \(wrong password/);
    await writeFile(join(dir, 'corrupt.key'), '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n');
    const corrupt = await tsb(['sign', '--key', 'corrupt.key', images['badpw']!.ref]);
    expect(corrupt.code).not.toBe(0);
    expect(corrupt.stderr).toMatch(/corrupt\.key/);
    const noPw = await tsb(['sign', '--key', 'ts.key', images['badpw']!.ref], { COSIGN_PASSWORD: undefined as unknown as string });
    expect(noPw.code).not.toBe(0);
    expect(noPw.stderr).toMatch(/COSIGN_PASSWORD/);
    expect(await sigTagExists('badpw')).toBe(false);
    const missing = await tsb(['sign', '--key', 'ts.key', `${reg.host}/demo/missing:v1`]);
    expect(missing.code).toBe(11);
    expect(missing.stderr).toMatch(/image .*demo\/missing:v1 not found/);
    const bad = await tsb(['attest', '--key', 'ts.key', '--type', 'slsaprovenance', '--predicate', 'ts.pub', images['badpw']!.ref]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/not valid json/);
  });
});
