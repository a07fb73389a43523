/**
 * The Sigstore bundle form of a keyed cosign signature (what cosign v3 writes by default): a
 * bundle v0.3 whose content is a DSSE envelope around an in-toto v1 statement with predicate type
 * `https://sigstore.dev/cosign/sign/v1` about the image digest (`-a` annotations on the subject),
 * attached to the image as an OCI 1.1 referrer (artifactType = the bundle media type).
 * https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
 */
import { createHash } from 'node:crypto';
import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, digestHex, sha256, type Digest } from '../oci/digest.js';
import type { Image } from '../oci/image.js';
import { MediaTypes } from '../oci/media-types.js';
import { assemble, computedImage } from '../oci/mutate.js';
import { layerFromCore } from '../oci/partial.js';
import { readableFrom } from '../util/streams.js';
import { IN_TOTO_PAYLOAD_TYPE, parseStatement, preAuthEncoding, verifyEnvelope, type DsseEnvelope, type InTotoStatement } from './dsse.js';
import { SignError } from './errors.js';
import { goJson, goMap } from './go-json.js';
import type { Signer, Verifier } from './keys.js';

/** Media type of a Sigstore bundle v0.3 (also the referrer's artifactType). */
export const SIGSTORE_BUNDLE_MEDIA_TYPE = MediaTypes.SigstoreBundle;
/** Predicate type of the statement cosign v3 signs for `cosign sign`. */
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
/** `_type` of in-toto v1 statements. */
export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** Referrer manifest annotation naming the statement's predicate type (cosign). */
export const BUNDLE_PREDICATE_TYPE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
/** Referrer manifest annotation naming the bundle content kind (cosign). */
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
/** The empty JSON config of artifact manifests (image-spec 1.1). */
const EMPTY_CONFIG = Buffer.from('{}');

/** The in-toto v1 statement cosign v3 signs for an image digest with optional annotations. */
export function signStatement(digest: Digest, annotations: Readonly<Record<string, string>> = {}): Buffer {
  const subject: Record<string, unknown> = { digest: goMap({ [digestAlgorithm(digest)]: digestHex(digest) }) };
  if (Object.keys(annotations).length) subject['annotations'] = goMap({ ...annotations });
  return Buffer.from(goJson({ _type: IN_TOTO_STATEMENT_V1, subject: [subject], predicateType: COSIGN_SIGN_PREDICATE_TYPE, predicate: {} }), 'utf8');
}

/** The public key hint sigstore-go puts in bundles: base64 of the SHA-256 of the PKIX DER. */
export function publicKeyHint(v: Pick<Signer, 'publicKey'>): string {
  return createHash('sha256').update(v.publicKey.export({ format: 'der', type: 'spki' })).digest('base64');
}

/** A bundle v0.3 (JSON bytes, protobuf JSON names) with a DSSE envelope of `statement` signed by `signer`. */
export async function signBundle(signer: Signer, statement: Uint8Array): Promise<Buffer> {
  const sig = await signer.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement));
  const bundle = {
    mediaType: SIGSTORE_BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: publicKeyHint(signer) } },
    dsseEnvelope: {
      payload: Buffer.from(statement).toString('base64'),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: Buffer.from(sig).toString('base64'), keyid: '' }],
    },
  };
  return Buffer.from(JSON.stringify(bundle), 'utf8');
}

/**
 * The referrer manifest that attaches `bundle` to `subject` (cosign v3 `WriteAttestationNewBundleFormat`):
 * artifactType = bundle media type, the empty config, one layer holding the bundle, `subject`, and
 * cosign's annotations. Push it by digest; registries with the referrers API index it.
 */
export function bundleReferrer(subject: Descriptor, bundle: Uint8Array, predicateType: string = COSIGN_SIGN_PREDICATE_TYPE, created: Date = new Date()): Image {
  const layerDigest = sha256(bundle);
  const layer = layerFromCore(
    {
      digest: async () => layerDigest,
      size: async () => bundle.byteLength,
      mediaType: async () => SIGSTORE_BUNDLE_MEDIA_TYPE,
      compressed: async () => readableFrom(bundle),
    },
    layerDigest,
  );
  return computedImage(async () =>
    assemble(
      {
        schemaVersion: 2,
        mediaType: MediaTypes.OciManifest,
        artifactType: SIGSTORE_BUNDLE_MEDIA_TYPE,
        config: { mediaType: MediaTypes.OciEmpty },
        layers: [{ mediaType: SIGSTORE_BUNDLE_MEDIA_TYPE, digest: layerDigest, size: bundle.byteLength }],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        annotations: {
          [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
          [BUNDLE_PREDICATE_TYPE_ANNOTATION]: predicateType,
          'org.opencontainers.image.created': created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
      },
      { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } },
      [layer],
      EMPTY_CONFIG,
    ),
  );
}

/** The outcome of checking one bundle. */
export interface BundleCheck {
  readonly ok: boolean;
  readonly reason?: string;
  readonly statement?: InTotoStatement;
}

/**
 * Checks a bundle against `verifier`: a DSSE envelope whose signature verifies, an in-toto
 * statement of `predicateType` with a subject whose digest is `digest` and whose annotations
 * contain `annotations`.
 */
export function checkBundle(bundle: Uint8Array, digest: Digest, verifier: Verifier, annotations: Readonly<Record<string, string>> = {}, predicateType: string = COSIGN_SIGN_PREDICATE_TYPE): BundleCheck {
  let b: { mediaType?: unknown; dsseEnvelope?: DsseEnvelope };
  try {
    b = JSON.parse(Buffer.from(bundle).toString('utf8')) as typeof b;
  } catch (e) {
    throw new SignError('INVALID_SIGNATURE', 'sigstore bundle: not json', { cause: e });
  }
  if (typeof b?.mediaType !== 'string' || !b.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) return { ok: false, reason: 'not a sigstore bundle' };
  const env = b.dsseEnvelope;
  if (!env || typeof env.payload !== 'string' || !Array.isArray(env.signatures)) return { ok: false, reason: 'bundle has no dsse envelope' };
  const payload = verifyEnvelope(env, verifier);
  if (!payload) return { ok: false, reason: 'invalid signature on the bundle' };
  const statement = parseStatement(payload, 'sigstore bundle');
  if (statement.predicateType !== predicateType) return { ok: false, reason: `predicate type ${statement.predicateType} is not ${predicateType}`, statement };
  const hex = digestHex(digest);
  const subj = statement.subject.find((s) => s?.digest?.[digestAlgorithm(digest)] === hex) as (InTotoStatement['subject'][number] & { annotations?: Record<string, unknown> }) | undefined;
  if (!subj) return { ok: false, reason: `no subject with digest ${digest}`, statement };
  for (const [k, v] of Object.entries(annotations)) {
    if (subj.annotations?.[k] !== v) return { ok: false, reason: `missing or incorrect annotation ${k}=${v}`, statement };
  }
  return { ok: true, statement };
}
