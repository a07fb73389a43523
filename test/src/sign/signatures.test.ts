import { describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { inTotoStatement, parseEnvelope, preAuthEncoding, signEnvelope, verifyEnvelope, PREDICATE_TYPES } from '../../../src/sign/dsse.js';
import { generateKeyPair, readPrivateKey, readPublicKey, type Signer, type Verifier } from '../../../src/sign/keys.js';
import { dockerReference, parseAnnotations, simpleSigningPayload } from '../../../src/sign/payload.js';
import { goJson, goMap } from '../../../src/sign/go-json.js';
import {
  SIGNATURE_ANNOTATION,
  appendSignatureLayers,
  attestationLayer,
  attestationTag,
  checkAttestations,
  checkSignatures,
  signatureLayer,
  signatureTag,
} from '../../../src/sign/signatures.js';
import { SignError } from '../../../src/sign/errors.js';
import { parseReference } from '../../../src/oci/reference.js';
import { readAll } from '../../../src/util/streams.js';

const D1 = sha256('image one');
const D2 = sha256('image two');

let keys: { signer: Signer; verifier: Verifier; other: Verifier } | undefined;
async function k(): Promise<NonNullable<typeof keys>> {
  if (!keys) {
    const a = generateKeyPair('a');
    const b = generateKeyPair('b');
    keys = { signer: await readPrivateKey(a.privateKeyPem, () => 'a'), verifier: readPublicKey(a.publicKeyPem), other: readPublicKey(b.publicKeyPem) };
  }
  return keys;
}

describe('simple-signing payload', () => {
  it('is byte-exact what cosign marshals, with "optional":null when there are no annotations', () => {
    const d = 'sha256:8897a2a5cc4c2b3c8a1b3f0f52ec1e14d9bb8f1b1ad6dfa2d1e0ee05fda2f6b2' as Digest;
    expect(simpleSigningPayload('127.0.0.1:15000/demo/app', d).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:15000/demo/app"},"image":{"docker-manifest-digest":"${d}"},"type":"cosign container image signature"},"optional":null}`,
    );
    expect(simpleSigningPayload('r/x', d, { z: '1', B: '2', a: '<&>' }).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${d}"},"type":"cosign container image signature"},"optional":{"B":"2","a":"\\u003c\\u0026\\u003e","z":"1"}}`,
    );
    expect(simpleSigningPayload('r/x', d, {}).toString()).toContain('"optional":null');
  });

  it('names Docker Hub repositories the way go-containerregistry does', () => {
    expect(dockerReference(parseReference('busybox'))).toBe('index.docker.io/library/busybox');
    expect(dockerReference(parseReference('127.0.0.1:5000/a/b:c'))).toBe('127.0.0.1:5000/a/b');
  });

  it('parses -a arguments and rejects malformed ones', () => {
    expect(parseAnnotations(['a=b', 'c=d=e', 'e='])).toEqual({ a: 'b', c: 'd=e', e: '' });
    expect(() => parseAnnotations(['novalue'])).toThrow(SignError);
    expect(() => parseAnnotations(['=x'])).toThrow(SignError);
  });

  it('encodes Go maps with byte-sorted keys and HTML-safe escapes', () => {
    expect(goJson(goMap({ b: 1, a: [true, null], 'é': 'x', Z: '\u2028' }))).toBe('{"Z":"\\u2028","a":[true,null],"b":1,"é":"x"}');
    expect(goJson({ b: 1, a: 2 })).toBe('{"b":1,"a":2}');
  });
});

describe('signature images', () => {
  it('uses cosign tag names', () => {
    expect(signatureTag(D1)).toBe(`sha256-${D1.slice(7)}.sig`);
    expect(attestationTag(D1)).toBe(`sha256-${D1.slice(7)}.att`);
  });

  it('builds a cosign-shaped image and appends, never drops, signatures', async () => {
    const { signer, verifier } = await k();
    const l1 = await signatureLayer(signer, 'reg/app', D1);
    const img1 = appendSignatureLayers(undefined, [l1]);
    const m1 = await img1.manifest();
    expect(m1.mediaType).toBe(MediaTypes.OciManifest);
    expect(m1.config.mediaType).toBe(MediaTypes.OciConfig);
    expect(m1.layers).toHaveLength(1);
    expect(m1.layers[0]!.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    expect(m1.layers[0]!.digest).toBe(sha256(l1.blob));
    expect(m1.layers[0]!.annotations?.[SIGNATURE_ANNOTATION]).toBe(l1.annotations[SIGNATURE_ANNOTATION]);
    const cfg = JSON.parse(Buffer.from(await img1.rawConfig()).toString()) as Record<string, unknown>;
    expect(cfg).toEqual({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: [sha256(l1.blob)] }, config: {} });
    const blob = await readAll(await (await img1.layerByDigest(m1.layers[0]!.digest)).compressed());
    expect(blob.equals(Buffer.from(l1.blob))).toBe(true);

    const l2 = await signatureLayer(signer, 'reg/app', D1, { env: 'prod' });
    const img2 = appendSignatureLayers(img1, [l2, l1]); // l1 again: a duplicate, skipped
    const m2 = await img2.manifest();
    expect(m2.layers.map((l) => l.digest)).toEqual([sha256(l1.blob), sha256(l2.blob)]);
    // Re-signing the same claims gives new ECDSA bytes: a duplicate only when the key is known.
    const again = await signatureLayer(signer, 'reg/app', D1, { env: 'prod' });
    expect(again.annotations[SIGNATURE_ANNOTATION]).not.toBe(l2.annotations[SIGNATURE_ANNOTATION]);
    expect((await appendSignatureLayers(img2, [again], { verifier }).manifest()).layers).toHaveLength(2);
    expect((await appendSignatureLayers(img2, [again], { verifier: (await k()).other }).manifest()).layers).toHaveLength(3);
    const checks = await checkSignatures(img2, D1, verifier);
    expect(checks.map((c) => c.ok)).toEqual([true, true]);
    expect((await checkSignatures(img2, D1, verifier, { env: 'prod' })).map((c) => c.ok)).toEqual([false, true]);
  });

  it('rejects tampering: other digest, edited payload, wrong key, wrong annotation', async () => {
    const { signer, verifier, other } = await k();
    const good = await signatureLayer(signer, 'reg/app', D1, { a: '1' });
    const img = appendSignatureLayers(undefined, [good]);
    expect((await checkSignatures(img, D1, verifier))[0]!.ok).toBe(true);
    // signature copied to another image: the claim names D1, not D2
    const moved = await checkSignatures(img, D2, verifier);
    expect(moved[0]!.ok).toBe(false);
    expect(moved[0]!.reason).toMatch(/digest/);
    // wrong key
    expect((await checkSignatures(img, D1, other))[0]!.ok).toBe(false);
    // annotation mismatch
    expect((await checkSignatures(img, D1, verifier, { a: '2' }))[0]!.ok).toBe(false);
    // edited payload with the original signature
    const edited = Buffer.from(Buffer.from(good.blob).toString().replace(D1, D2));
    const forged = appendSignatureLayers(undefined, [{ ...good, blob: edited }]);
    const f = await checkSignatures(forged, D2, verifier);
    expect(f[0]!.ok).toBe(false);
    expect(f[0]!.reason).toMatch(/signature/);
    // no signature annotation
    const bare = appendSignatureLayers(undefined, [{ ...good, annotations: {} }]);
    expect((await checkSignatures(bare, D1, verifier))[0]!.ok).toBe(false);
  });
});

describe('attestations', () => {
  it('computes the DSSE pre-authentication encoding of the spec', () => {
    expect(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });

  it('signs an in-toto statement that verifies, and rejects tampering', async () => {
    const { signer, verifier, other } = await k();
    const statement = inTotoStatement({ repository: 'reg/app', digest: D1, type: 'spdxjson', predicate: Buffer.from('{"spdxVersion":"SPDX-2.3","b":1,"a":2}') });
    expect(statement.toString()).toBe(
      `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[{"name":"reg/app","digest":{"sha256":"${D1.slice(7)}"}}],"predicate":{"a":2,"b":1,"spdxVersion":"SPDX-2.3"}}`,
    );
    const env = await signEnvelope(signer, statement);
    const parsed = parseEnvelope(env);
    expect(Object.keys(parsed)).toEqual(['payloadType', 'payload', 'signatures']);
    expect(parsed.payloadType).toBe('application/vnd.in-toto+json');
    expect(verifyEnvelope(parsed, verifier)?.equals(statement)).toBe(true);
    expect(verifyEnvelope(parsed, other)).toBeUndefined();
    const edited = { ...parsed, payload: Buffer.from(statement.toString().replace('reg/app', 'reg/evil')).toString('base64') };
    expect(verifyEnvelope(edited, verifier)).toBeUndefined();

    const img = appendSignatureLayers(undefined, [attestationLayer(env, PREDICATE_TYPES['spdxjson']!)]);
    const m = await img.manifest();
    expect(m.layers[0]!.mediaType).toBe('application/vnd.dsse.envelope.v1+json');
    expect(m.layers[0]!.annotations).toEqual({ 'dev.cosignproject.cosign/signature': '', predicateType: 'https://spdx.dev/Document' });
    expect((await checkAttestations(img, D1, verifier, 'https://spdx.dev/Document'))[0]!.ok).toBe(true);
    expect((await checkAttestations(img, D1, verifier, 'https://slsa.dev/provenance/v0.2'))[0]!.ok).toBe(false);
    expect((await checkAttestations(img, D2, verifier))[0]!.ok).toBe(false);
    expect((await checkAttestations(img, D1, other))[0]!.ok).toBe(false);
  });

  it('wraps custom predicates like cosign and rejects bad predicates', () => {
    const s = JSON.parse(inTotoStatement({ repository: 'r', digest: D1, type: 'custom', predicate: Buffer.from('any text'), now: new Date('2024-01-02T03:04:05.678Z') }).toString());
    expect(s.predicateType).toBe('https://cosign.sigstore.dev/attestation/v1');
    expect(s.predicate).toEqual({ Data: 'any text', Timestamp: '2024-01-02T03:04:05Z' });
    expect(() => inTotoStatement({ repository: 'r', digest: D1, type: 'slsaprovenance', predicate: Buffer.from('{bad') })).toThrow(SignError);
    expect(() => inTotoStatement({ repository: 'r', digest: D1, type: 'nonsense', predicate: Buffer.from('{}') })).toThrow(SignError);
    expect(JSON.parse(inTotoStatement({ repository: 'r', digest: D1, type: 'https://example.com/p/v1', predicate: Buffer.from('{}') }).toString()).predicateType).toBe('https://example.com/p/v1');
  });
});
