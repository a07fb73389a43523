/**
 * cosign's signature and attestation images: an OCI manifest tagged `sha256-<hex>.sig` (or
 * `.att`) in the signed image's repository, one layer per signature whose blob is the signed
 * payload and whose descriptor annotations carry the signature. New signatures are appended to
 * the layers already there (cosign `mutate.AppendSignatures`), never replacing them.
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 */
import { digestAlgorithm, digestHex, sha256, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Image, Layer } from '../oci/image.js';
import type { ImageManifest } from '../oci/manifest.js';
import { MediaTypes, type MediaType } from '../oci/media-types.js';
import { assemble, computedImage } from '../oci/mutate.js';
import { layerFromCore } from '../oci/partial.js';
import { readableFrom, readAll } from '../util/streams.js';
import { SignError } from './errors.js';
import { goJson } from './go-json.js';
import { parseEnvelope, parseStatement, verifyEnvelope, type InTotoStatement } from './dsse.js';
import type { Signer, Verifier } from './keys.js';
import { parseSimpleSigningPayload, simpleSigningPayload, type SimpleSigningPayload } from './payload.js';

/** Layer annotation holding the base64 signature of a `.sig` layer. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** Layer annotation holding the predicate type of a `.att` layer. */
export const PREDICATE_TYPE_ANNOTATION = 'predicateType';
/** Media type of a `.sig` layer (the simple-signing payload). */
export const SIMPLE_SIGNING_MEDIA_TYPE = MediaTypes.CosignSimpleSigning;
/** Media type of a `.att` layer (the DSSE envelope). */
export const DSSE_MEDIA_TYPE = MediaTypes.InTotoDsse;
/** The zero time Go writes for an unset time.Time (cosign's signature image config). */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
/** Signature payloads and envelopes larger than this are refused when read back. */
const MAX_PAYLOAD = 16 << 20;

/** The tag cosign stores signatures of `subject` under: `sha256-<hex>.sig`. */
export function signatureTag(subject: Digest): string {
  return `${digestAlgorithm(subject)}-${digestHex(subject)}.sig`;
}

/** The tag cosign stores attestations of `subject` under: `sha256-<hex>.att`. */
export function attestationTag(subject: Digest): string {
  return `${digestAlgorithm(subject)}-${digestHex(subject)}.att`;
}

/** One layer to add to a signature image: the blob bytes and the descriptor annotations. */
export interface SignatureLayer {
  readonly mediaType: MediaType;
  readonly blob: Uint8Array;
  readonly annotations: Readonly<Record<string, string>>;
}

/** A layer whose bytes are in memory (diff id = digest: the blob is not compressed). */
function memoryLayer(l: SignatureLayer): Layer {
  const digest = sha256(l.blob);
  const desc: Descriptor = { mediaType: l.mediaType, digest, size: l.blob.byteLength, annotations: { ...l.annotations } };
  return layerFromCore(
    {
      digest: async () => digest,
      size: async () => l.blob.byteLength,
      mediaType: async () => l.mediaType,
      compressed: async () => readableFrom(l.blob),
      descriptor: async () => desc,
    },
    digest,
  );
}

/** The cosign-style config bytes for signature layers with these diff ids (Go field order). */
function signatureConfig(diffIds: readonly string[]): Buffer {
  return Buffer.from(
    goJson({
      architecture: '',
      created: GO_ZERO_TIME,
      history: diffIds.map(() => ({ created: GO_ZERO_TIME })),
      os: '',
      rootfs: { type: 'layers', diff_ids: diffIds },
      config: {},
    }),
    'utf8',
  );
}

/** Options of {@link appendSignatureLayers}. */
export interface AppendOptions {
  /**
   * The signer's public key: an existing layer with the same payload whose signature verifies
   * with it counts as a duplicate (ECDSA signatures differ on every run, so bytes alone do not tell).
   */
  readonly verifier?: Verifier;
}

/**
 * A signature (or attestation) image: `base`'s layers (an existing `.sig`/`.att` image, kept
 * with their descriptors and annotations) followed by `add`. A layer of `add` that duplicates an
 * existing one is skipped, as cosign's duplicate detector does: same payload digest, and the same
 * annotations or (with `opts.verifier`) an existing signature that verifies with the same key. So
 * signing twice with the same key and claims does not grow the image. The config is rebuilt in
 * cosign's shape (empty platform, zero times, one diff id per layer); the manifest is OCI.
 */
export function appendSignatureLayers(base: Image | undefined, add: readonly SignatureLayer[], opts: AppendOptions = {}): Image {
  return computedImage(async () => {
    const baseManifest: ImageManifest | undefined = base ? await base.manifest() : undefined;
    const baseLayers: readonly Layer[] = base ? await base.layers() : [];
    const descs: Descriptor[] = [...(baseManifest?.layers ?? [])];
    const layers: Layer[] = [...baseLayers];
    for (const a of add) {
      const digest = sha256(a.blob);
      const dup = descs.some((d) => {
        if (d.digest !== digest || d.mediaType !== a.mediaType) return false;
        if (JSON.stringify(d.annotations ?? {}) === JSON.stringify(a.annotations)) return true;
        const sig = d.annotations?.[SIGNATURE_ANNOTATION];
        return !!opts.verifier && !!sig && opts.verifier.verify(a.blob, Buffer.from(sig, 'base64'));
      });
      if (dup) continue;
      descs.push({ mediaType: a.mediaType, size: a.blob.byteLength, digest, annotations: { ...a.annotations } });
      layers.push(memoryLayer(a));
    }
    // The blobs of signature layers are stored uncompressed, so each diff id is the blob digest.
    const rawConfig = signatureConfig(descs.map((d) => d.digest));
    const config = JSON.parse(rawConfig.toString('utf8'));
    return assemble(
      { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: { mediaType: MediaTypes.OciConfig }, layers: descs },
      config,
      layers,
      rawConfig,
    );
  });
}

/**
 * The `.sig` layer for `digest` in `repository` (a {@link dockerReference}) signed by `signer`:
 * the simple-signing payload with `annotations` as `optional`, and its base64 signature.
 */
export async function signatureLayer(signer: Signer, repository: string, digest: Digest, annotations?: Readonly<Record<string, string>>): Promise<SignatureLayer> {
  const payload = simpleSigningPayload(repository, digest, annotations);
  const sig = await signer.sign(payload);
  return { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, blob: payload, annotations: { [SIGNATURE_ANNOTATION]: Buffer.from(sig).toString('base64') } };
}

/** The `.att` layer for a signed DSSE envelope with statement of `predicateType`. */
export function attestationLayer(envelope: Uint8Array, predicateType: string): SignatureLayer {
  // cosign puts an empty signature annotation on attestation layers (static.NewAttestation), and
  // `cosign verify-attestation` refuses layers without it.
  return { mediaType: DSSE_MEDIA_TYPE, blob: envelope, annotations: { [SIGNATURE_ANNOTATION]: '', [PREDICATE_TYPE_ANNOTATION]: predicateType } };
}

/** The outcome for one layer of a signature image. */
export interface SignatureCheck {
  readonly layer: Digest;
  /** True when the signature verifies and every claim matches. */
  readonly ok: boolean;
  /** Why it did not verify (undefined when ok). */
  readonly reason?: string;
  /** The parsed payload, when it could be parsed. */
  readonly payload?: SimpleSigningPayload;
}

async function readLayerBlob(img: Image, d: Descriptor): Promise<Buffer> {
  const l = await img.layerByDigest(d.digest);
  return readAll(await l.compressed(), MAX_PAYLOAD, `signature layer ${d.digest}`);
}

/**
 * Checks every simple-signing layer of a `.sig` image against `verifier`, the signed image
 * `digest` (the payload's `docker-manifest-digest` must equal it) and `annotations` (each must
 * appear with the same value in the payload's `optional`). Layers are read through the image,
 * which verifies their digests. Returns one check per simple-signing layer.
 */
export async function checkSignatures(sigImage: Image, digest: Digest, verifier: Verifier, annotations: Readonly<Record<string, string>> = {}): Promise<SignatureCheck[]> {
  const m = await sigImage.manifest();
  const out: SignatureCheck[] = [];
  for (const d of m.layers) {
    if (d.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    const b64 = d.annotations?.[SIGNATURE_ANNOTATION];
    if (!b64) {
      out.push({ layer: d.digest, ok: false, reason: 'no signature annotation' });
      continue;
    }
    const blob = await readLayerBlob(sigImage, d);
    if (!verifier.verify(blob, Buffer.from(b64, 'base64'))) {
      out.push({ layer: d.digest, ok: false, reason: 'invalid signature when validating ASN.1 encoded signature' });
      continue;
    }
    let payload: SimpleSigningPayload;
    try {
      payload = parseSimpleSigningPayload(blob, `signature layer ${d.digest}`);
    } catch (e) {
      out.push({ layer: d.digest, ok: false, reason: (e as Error).message });
      continue;
    }
    const reason = claimMismatch(payload, digest, annotations);
    out.push(reason ? { layer: d.digest, ok: false, reason, payload } : { layer: d.digest, ok: true, payload });
  }
  return out;
}

function claimMismatch(p: SimpleSigningPayload, digest: Digest, annotations: Readonly<Record<string, string>>): string | undefined {
  if (p.critical.image['docker-manifest-digest'] !== digest) return `invalid or missing digest in claim: ${p.critical.image['docker-manifest-digest']}`;
  if (p.critical.type !== 'cosign container image signature') return `unexpected signature type ${JSON.stringify(p.critical.type)}`;
  for (const [k, v] of Object.entries(annotations)) {
    const got = p.optional?.[k];
    if (got !== v) return `missing or incorrect annotation ${k}=${v}${got === undefined ? '' : ` (found ${JSON.stringify(got)})`}`;
  }
  return undefined;
}

/** The outcome for one layer of an attestation image. */
export interface AttestationCheck {
  readonly layer: Digest;
  readonly ok: boolean;
  readonly reason?: string;
  readonly statement?: InTotoStatement;
  /** The raw DSSE envelope (what cosign prints). */
  readonly envelope?: string;
}

/**
 * Checks every DSSE layer of a `.att` image: the envelope signature with `verifier`, a subject
 * whose sha256 is `digest`'s, and (when given) the statement's `predicateType`.
 */
export async function checkAttestations(attImage: Image, digest: Digest, verifier: Verifier, predicateType?: string): Promise<AttestationCheck[]> {
  const m = await attImage.manifest();
  const out: AttestationCheck[] = [];
  for (const d of m.layers) {
    if (d.mediaType !== DSSE_MEDIA_TYPE) continue;
    const blob = await readLayerBlob(attImage, d);
    const envelope = blob.toString('utf8');
    let statement: InTotoStatement;
    try {
      const env = parseEnvelope(blob, `attestation layer ${d.digest}`);
      const payload = verifyEnvelope(env, verifier);
      if (!payload) {
        out.push({ layer: d.digest, ok: false, reason: 'invalid signature on the dsse envelope', envelope });
        continue;
      }
      statement = parseStatement(payload, `attestation layer ${d.digest}`);
    } catch (e) {
      if (!(e instanceof SignError)) throw e;
      out.push({ layer: d.digest, ok: false, reason: e.message, envelope });
      continue;
    }
    const hex = digestHex(digest);
    if (!statement.subject.some((s) => s?.digest?.[digestAlgorithm(digest)] === hex)) {
      out.push({ layer: d.digest, ok: false, reason: `no subject with digest ${digest}`, statement, envelope });
    } else if (predicateType !== undefined && statement.predicateType !== predicateType) {
      out.push({ layer: d.digest, ok: false, reason: `predicate type ${statement.predicateType} is not ${predicateType}`, statement, envelope });
    } else {
      out.push({ layer: d.digest, ok: true, statement, envelope });
    }
  }
  return out;
}
