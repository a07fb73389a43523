import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/oci/digest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { bundleReferrer, checkBundle, publicKeyHint, signBundle, signStatement } from '../../../src/sign/bundle.js';
import { generateKeyPair, readPrivateKey, readPublicKey } from '../../../src/sign/keys.js';

const D1 = sha256('one');
const D2 = sha256('two');

describe('sigstore bundle form', () => {
  it('signs the in-toto v1 cosign/sign statement cosign v3 uses', () => {
    expect(signStatement(D1).toString()).toBe(
      `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"${D1.slice(7)}"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`,
    );
    expect(JSON.parse(signStatement(D1, { b: '2', a: '1' }).toString()).subject[0].annotations).toEqual({ a: '1', b: '2' });
  });

  it('makes a v0.3 bundle that verifies, and refuses other digests, keys and annotations', async () => {
    const a = generateKeyPair('a');
    const signer = await readPrivateKey(a.privateKeyPem, () => 'a');
    const verifier = readPublicKey(a.publicKeyPem);
    const other = readPublicKey(generateKeyPair('b').publicKeyPem);
    const bundle = await signBundle(signer, signStatement(D1, { env: 'prod' }));
    const b = JSON.parse(bundle.toString());
    expect(b.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(b.verificationMaterial.publicKey.hint).toBe(publicKeyHint(signer));
    expect(b.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    expect(checkBundle(bundle, D1, verifier).ok).toBe(true);
    expect(checkBundle(bundle, D1, verifier, { env: 'prod' }).ok).toBe(true);
    expect(checkBundle(bundle, D1, verifier, { env: 'dev' }).ok).toBe(false);
    expect(checkBundle(bundle, D2, verifier).reason).toMatch(/no subject/);
    expect(checkBundle(bundle, D1, other).reason).toMatch(/invalid signature/);
    const edited = { ...b, dsseEnvelope: { ...b.dsseEnvelope, payload: signStatement(D2).toString('base64') } };
    expect(checkBundle(Buffer.from(JSON.stringify(edited)), D2, verifier).ok).toBe(false);
  });

  it('attaches the bundle as an OCI 1.1 artifact manifest with a subject', async () => {
    const bundle = Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}');
    const subject = { mediaType: MediaTypes.OciManifest, digest: D1, size: 123, annotations: { x: 'y' } };
    const img = bundleReferrer(subject, bundle, undefined, new Date('2024-01-01T00:00:00Z'));
    const m = await img.manifest();
    expect(m.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(m.config).toEqual({ mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 });
    expect(m.subject).toEqual({ mediaType: MediaTypes.OciManifest, digest: D1, size: 123 });
    expect(m.layers).toEqual([{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: sha256(bundle), size: bundle.length }]);
    expect(m.annotations).toEqual({ 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1', 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });
  });
});
