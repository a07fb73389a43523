/**
 * The cosign "simple signing" payload: what a `.sig` layer holds and what its signature covers.
 * https://github.com/sigstore/sigstore/blob/main/pkg/signature/payload/payload.go
 * https://github.com/containers/image/blob/main/docs/containers-signature.5.md
 */
import { parseDigest, type Digest } from '../oci/digest.js';
import type { Reference } from '../oci/reference.js';
import { SignError } from './errors.js';
import { goJson, goMap } from './go-json.js';

/** The `critical.type` of a cosign container image signature. */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** A parsed simple-signing payload (field names as on the wire). */
export interface SimpleSigningPayload {
  readonly critical: {
    readonly identity: { readonly 'docker-reference': string };
    readonly image: { readonly 'docker-manifest-digest': string };
    readonly type: string;
  };
  readonly optional: Readonly<Record<string, unknown>> | null;
}

/**
 * The repository name cosign (go-containerregistry `name.Repository.Name()`) writes as
 * `docker-reference`: `registry/repository`, with Docker Hub spelled `index.docker.io`.
 */
export function dockerReference(ref: Pick<Reference, 'registry' | 'repository'>): string {
  const registry = ref.registry === 'docker.io' ? 'index.docker.io' : ref.registry;
  return `${registry}/${ref.repository}`;
}

/**
 * The payload bytes cosign signs for `digest` in `repository` (from {@link dockerReference}),
 * exactly as Go marshals `payload.SimpleContainerImage`: struct fields in order, the optional
 * annotations map with sorted keys, `"optional":null` when there are none.
 */
export function simpleSigningPayload(repository: string, digest: Digest, annotations?: Readonly<Record<string, string>>): Buffer {
  const optional = annotations && Object.keys(annotations).length > 0 ? goMap({ ...annotations }) : null;
  const v = {
    critical: { identity: { 'docker-reference': repository }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
    optional,
  };
  return Buffer.from(goJson(v), 'utf8');
}

/** Parses payload bytes; SignError INVALID_SIGNATURE when they are not a simple-signing payload. */
export function parseSimpleSigningPayload(bytes: Uint8Array, what = 'signature payload'): SimpleSigningPayload {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new SignError('INVALID_SIGNATURE', `${what}: not json`, { cause: e });
  }
  const c = (v as { critical?: unknown } | null)?.critical as SimpleSigningPayload['critical'] | undefined;
  if (!c || typeof c !== 'object' || typeof c.image?.['docker-manifest-digest'] !== 'string' || typeof c.type !== 'string') {
    throw new SignError('INVALID_SIGNATURE', `${what}: not a simple-signing payload (critical.image.docker-manifest-digest missing)`);
  }
  const optional = (v as { optional?: unknown }).optional;
  return { critical: c, optional: optional && typeof optional === 'object' ? (optional as Record<string, unknown>) : null };
}

/** Parses `k=v` annotation arguments (`-a`); SignError INVALID_ANNOTATION naming the bad one. */
export function parseAnnotations(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const i = a.indexOf('=');
    if (i <= 0) throw new SignError('INVALID_ANNOTATION', `annotation ${JSON.stringify(a)}: want key=value`);
    out[a.slice(0, i)] = a.slice(i + 1);
  }
  return out;
}

/** The digest in a payload, validated. */
export function payloadDigest(p: SimpleSigningPayload): Digest {
  return parseDigest(p.critical.image['docker-manifest-digest']);
}
