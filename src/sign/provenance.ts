/**
 * SLSA v1 build provenance of a Dockerfile build: the predicate `tsbuild build --provenance`
 * attaches (predicate type https://slsa.dev/provenance/v1).
 * https://slsa.dev/spec/v1.0/provenance
 * Pure: every input (digests, times, ids) comes from the caller.
 */
import { createHash } from 'node:crypto';
import { digestHex, type Digest } from '../oci/digest.js';
import { SignError } from './errors.js';

/** The predicate type of SLSA provenance v1. */
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';

/**
 * `buildDefinition.buildType`: names the template of this provenance (what externalParameters and
 * internalParameters hold, as documented in src/sign/README.md).
 */
export const TSBUILD_BUILD_TYPE = 'https://tsbuild.dev/provenance/dockerfile/v1';

/** `runDetails.builder.id` unless the caller names its own builder (a CI job, for instance). */
export const TSBUILD_BUILDER_ID = 'https://tsbuild.dev/builder';

/** A SLSA ResourceDescriptor (spec field names). https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md */
export interface ResourceDescriptor {
  readonly uri?: string;
  readonly digest?: Readonly<Record<string, string>>;
  readonly name?: string;
  readonly mediaType?: string;
  /** base64 of the resource's bytes. */
  readonly content?: string;
  readonly annotations?: Readonly<Record<string, unknown>>;
}

/** The provenance predicate (spec field names). */
export interface SlsaProvenanceV1 {
  readonly buildDefinition: {
    readonly buildType: string;
    readonly externalParameters: Readonly<Record<string, unknown>>;
    readonly internalParameters?: Readonly<Record<string, unknown>>;
    readonly resolvedDependencies?: readonly ResourceDescriptor[];
  };
  readonly runDetails: {
    readonly builder: { readonly id: string; readonly version?: Readonly<Record<string, string>>; readonly builderDependencies?: readonly ResourceDescriptor[] };
    readonly metadata?: { readonly invocationId?: string; readonly startedOn?: string; readonly finishedOn?: string };
    readonly byproducts?: readonly ResourceDescriptor[];
  };
}

/** A base image the build used (FROM, COPY --from=IMAGE, RUN --mount from=IMAGE). */
export interface BaseImageUse {
  /** The reference as the Dockerfile wrote it (after ARG expansion). */
  readonly ref: string;
  /** Its registry/repository name and tag, parsed (for the package URL). */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  /** The manifest digest that was built on. */
  readonly digest: Digest;
  /** `os/arch[/variant]` of the image used. */
  readonly platform: string;
}

/** What {@link buildProvenance} describes. */
export interface ProvenanceInput {
  /** `min`: parameters, dependencies, run metadata; `max`: also the Dockerfile text and the image's layers. */
  readonly mode: 'min' | 'max';
  /** The Dockerfile's path as given to the build (relative, or `-` for stdin). */
  readonly dockerfilePath: string;
  readonly dockerfile: Uint8Array;
  readonly target?: string;
  /** Build args in effect (from the command line: never secret values). */
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  /** Ids of `--secret`s (values are never recorded). */
  readonly secretIds?: readonly string[];
  /** `os/arch[/variant]` built for. */
  readonly platform: string;
  readonly baseImages: readonly BaseImageUse[];
  /** Builder-controlled choices: network of RUN steps, cache use, compression, SOURCE_DATE_EPOCH. */
  readonly internal?: Readonly<Record<string, unknown>>;
  readonly builderId?: string;
  readonly builderVersion: string;
  readonly invocationId: string;
  readonly startedOn: Date;
  readonly finishedOn: Date;
  /** mode=max: the built image's layers (compressed digest and media type). */
  readonly layers?: readonly { readonly digest: Digest; readonly mediaType: string; readonly size: number }[];
}

/** RFC 3339 in UTC with second precision, as SLSA examples (and Go's time.RFC3339) write it. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Percent-encoding for purl qualifier values and path segments. */
function purlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':');
}

/**
 * The package URL of a container image, as BuildKit writes it in provenance
 * (`pkg:docker/<name>@<tag>?platform=<os>%2F<arch>`); Docker Hub names lose `docker.io/` and
 * `library/`; other registries stay part of the name.
 * https://github.com/package-url/purl-spec/blob/master/PURL-TYPES.rst#docker
 */
export function imagePurl(img: Pick<BaseImageUse, 'registry' | 'repository' | 'tag' | 'digest' | 'platform'>): string {
  let name = img.repository;
  if (img.registry === 'docker.io' || img.registry === 'index.docker.io') name = name.replace(/^library\//, '');
  else name = `${img.registry}/${name}`;
  const path = name.split('/').map(purlEncode).join('/');
  return `pkg:docker/${path}@${purlEncode(img.tag ?? 'latest')}?platform=${encodeURIComponent(img.platform)}`;
}

function sha256Set(d: Digest): Record<string, string> {
  if (!d.startsWith('sha256:')) throw new SignError('INVALID_PREDICATE', `provenance: digest ${d} is not sha256`);
  return { sha256: digestHex(d) };
}

/**
 * The SLSA v1 provenance predicate of one build. Field order is fixed (stable bytes for the same
 * input). Build args and labels are recorded; secrets only by id.
 */
export function buildProvenance(p: ProvenanceInput): SlsaProvenanceV1 {
  if (!p.invocationId) throw new SignError('INVALID_PREDICATE', 'provenance: invocation id is empty');
  if (p.finishedOn.getTime() < p.startedOn.getTime()) throw new SignError('INVALID_PREDICATE', 'provenance: finishedOn is before startedOn');
  const dfDigest = createHash('sha256').update(p.dockerfile).digest('hex');
  const externalParameters: Record<string, unknown> = {
    dockerfile: p.dockerfilePath,
    ...(p.target ? { target: p.target } : {}),
    buildArgs: sorted(p.buildArgs),
    ...(p.labels && Object.keys(p.labels).length ? { labels: sorted(p.labels) } : {}),
    ...(p.secretIds?.length ? { secrets: [...p.secretIds].sort().map((id) => ({ id })) } : {}),
    platform: p.platform,
  };
  const seen = new Set<string>();
  const deps: ResourceDescriptor[] = [];
  for (const b of p.baseImages) {
    const key = `${b.ref}@${b.digest}`;
    if (seen.has(key)) continue;
    seen.add(key);
    deps.push({ uri: imagePurl(b), digest: sha256Set(b.digest), name: b.ref });
  }
  deps.push({
    name: p.dockerfilePath,
    digest: { sha256: dfDigest },
    ...(p.mode === 'max' ? { mediaType: 'text/plain', content: Buffer.from(p.dockerfile).toString('base64') } : {}),
  });
  return {
    buildDefinition: {
      buildType: TSBUILD_BUILD_TYPE,
      externalParameters,
      internalParameters: { ...(p.internal ? sorted(p.internal) : {}), provenanceMode: p.mode },
      resolvedDependencies: deps,
    },
    runDetails: {
      builder: { id: p.builderId ?? TSBUILD_BUILDER_ID, version: { tsbuild: p.builderVersion } },
      metadata: { invocationId: p.invocationId, startedOn: rfc3339(p.startedOn), finishedOn: rfc3339(p.finishedOn) },
      ...(p.mode === 'max' && p.layers?.length ? { byproducts: p.layers.map((l) => ({ name: 'layer', digest: sha256Set(l.digest), mediaType: l.mediaType, annotations: { size: l.size } })) } : {}),
    },
  };
}

function sorted<T>(r: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k]!;
  return out;
}
