/**
 * DSSE envelopes around in-toto statements: what `cosign attest` pushes as `.att` layers.
 * https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
 * https://github.com/in-toto/attestation/blob/main/spec/v0.1.0/statement.md
 */
import { digestHex, type Digest } from '../oci/digest.js';
import { SignError } from './errors.js';
import { asGoValue, goJson, goMap } from './go-json.js';
import type { Signer, Verifier } from './keys.js';

/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** `_type` of the in-toto v0.1 statements cosign 2.x writes. */
export const IN_TOTO_STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';

/** cosign's `--type` names and the predicate type URIs they stand for (cosign options/predicate.go). */
export const PREDICATE_TYPES: Readonly<Record<string, string>> = {
  custom: 'https://cosign.sigstore.dev/attestation/v1',
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
};

/** The predicate type URI for a `--type` value: a known name, or a URI taken as is (INVALID_PREDICATE otherwise). */
export function predicateTypeFor(type: string): string {
  const known = PREDICATE_TYPES[type];
  if (known) return known;
  let u: URL;
  try {
    u = new URL(type);
  } catch {
    throw new SignError('INVALID_PREDICATE', `invalid predicate type ${JSON.stringify(type)}: want one of ${Object.keys(PREDICATE_TYPES).join(', ')} or a URI`);
  }
  if (!u.protocol) throw new SignError('INVALID_PREDICATE', `invalid predicate type ${JSON.stringify(type)}`);
  return type;
}

/** A DSSE envelope (field names as on the wire). */
export interface DsseEnvelope {
  readonly payloadType: string;
  /** base64 of the payload bytes. */
  readonly payload: string;
  readonly signatures: readonly { readonly keyid: string; readonly sig: string }[];
}

/** An in-toto statement as parsed from an envelope. */
export interface InTotoStatement {
  readonly _type: string;
  readonly predicateType: string;
  readonly subject: readonly { readonly name: string; readonly digest: Readonly<Record<string, string>> }[];
  readonly predicate: unknown;
}

/** DSSE pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>` (lengths in bytes). */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.byteLength} `, 'utf8'), Buffer.from(payload)]);
}

/**
 * The in-toto statement cosign 2.x makes for `cosign attest --type T --predicate F` (the bytes
 * are not byte-identical to cosign's for struct-typed predicates, which Go re-orders, but they are
 * the same statement): subject = `repository` with the image's sha256, predicate = the file's
 * JSON, or for `custom` `{"Data": <file text>, "Timestamp": <RFC 3339>}`.
 */
export function inTotoStatement(opts: { readonly repository: string; readonly digest: Digest; readonly type: string; readonly predicate: Uint8Array; readonly now?: Date }): Buffer {
  const predicateType = predicateTypeFor(opts.type);
  const text = Buffer.from(opts.predicate).toString('utf8');
  let predicate: unknown;
  if (predicateType === PREDICATE_TYPES['custom']) {
    const ts = (opts.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    predicate = { Data: text, Timestamp: ts };
  } else if (opts.type === 'spdx') {
    predicate = text;
  } else {
    try {
      predicate = asGoValue(JSON.parse(text));
    } catch (e) {
      throw new SignError('INVALID_PREDICATE', `predicate for ${opts.type}: not valid json: ${(e as Error).message}`, { cause: e });
    }
    if (predicate === null || typeof predicate !== 'object' || Array.isArray(predicate)) {
      throw new SignError('INVALID_PREDICATE', `predicate for ${opts.type}: want a json object`);
    }
  }
  const statement = {
    _type: IN_TOTO_STATEMENT_V01,
    predicateType,
    subject: [{ name: opts.repository, digest: goMap({ sha256: digestHex(opts.digest) }) }],
    predicate,
  };
  return Buffer.from(goJson(statement), 'utf8');
}

/** Signs `payload` into a DSSE envelope (JSON bytes, field order as Go writes them). */
export async function signEnvelope(signer: Signer, payload: Uint8Array, payloadType = IN_TOTO_PAYLOAD_TYPE): Promise<Buffer> {
  const sig = await signer.sign(preAuthEncoding(payloadType, payload));
  const env: DsseEnvelope = {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid: '', sig: Buffer.from(sig).toString('base64') }],
  };
  return Buffer.from(goJson(env), 'utf8');
}

/** Parses envelope bytes; SignError INVALID_SIGNATURE when malformed. */
export function parseEnvelope(bytes: Uint8Array, what = 'attestation'): DsseEnvelope {
  let v: Partial<DsseEnvelope>;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<DsseEnvelope>;
  } catch (e) {
    throw new SignError('INVALID_SIGNATURE', `${what}: dsse envelope is not json`, { cause: e });
  }
  if (!v || typeof v.payloadType !== 'string' || typeof v.payload !== 'string' || !Array.isArray(v.signatures)) {
    throw new SignError('INVALID_SIGNATURE', `${what}: not a dsse envelope`);
  }
  return v as DsseEnvelope;
}

/** DSSE allows standard and URL-safe base64. */
function b64(s: string): Buffer {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/**
 * Verifies an envelope with `verifier`: true when at least one signature is valid over the PAE
 * of its payload. Returns the payload bytes when valid.
 */
export function verifyEnvelope(env: DsseEnvelope, verifier: Verifier): Buffer | undefined {
  const payload = b64(env.payload);
  const pae = preAuthEncoding(env.payloadType, payload);
  for (const s of env.signatures) {
    if (typeof s?.sig === 'string' && verifier.verify(pae, b64(s.sig))) return payload;
  }
  return undefined;
}

/** Parses a statement from payload bytes; INVALID_SIGNATURE when it is not an in-toto statement. */
export function parseStatement(payload: Uint8Array, what = 'attestation'): InTotoStatement {
  let v: Partial<InTotoStatement>;
  try {
    v = JSON.parse(Buffer.from(payload).toString('utf8')) as Partial<InTotoStatement>;
  } catch (e) {
    throw new SignError('INVALID_SIGNATURE', `${what}: statement is not json`, { cause: e });
  }
  if (!v || typeof v.predicateType !== 'string' || !Array.isArray(v.subject)) throw new SignError('INVALID_SIGNATURE', `${what}: not an in-toto statement`);
  return v as InTotoStatement;
}
