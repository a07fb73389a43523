import { ContentError } from '../util/errors.js';
import { parseDigest, type Digest } from './digest.js';

/**
 * A fully normalised image reference: `registry/repository[:tag][@digest]`.
 * `registry` is `docker.io` for Docker Hub (never `index.docker.io`), and official Docker Hub
 * images carry the `library/` prefix in `repository`. At least one of `tag` and `digest` is set
 * by {@link parseReference}; both may be set (`name:tag@digest`), in which case the digest wins
 * when resolving and the tag is informational (Docker's behaviour).
 */
export interface Reference {
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

/** The registry Docker Hub references normalise to. */
export const DOCKER_HUB = 'docker.io';
/** The tag filled in when a reference has neither tag nor digest. */
export const DEFAULT_TAG = 'latest';
/** Maximum length of `registry/repository` (distribution/reference NameTotalLengthMax). */
export const NAME_MAX_LENGTH = 255;
/** Maximum length of a tag (distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`). */
export const TAG_MAX_LENGTH = 128;

const LEGACY_HUB = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

// The grammar of github.com/distribution/reference (regexp.go), written out piece by piece.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const ipv6Address = '\\[[a-fA-F0-9:]+\\]';
const host = `(?:${domainName}|${ipv6Address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPattern = `[\\w][\\w.-]{0,${TAG_MAX_LENGTH - 1}}`;
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;

const REFERENCE_RE = new RegExp(`^(${namePattern})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const TAG_RE = new RegExp(`^${tagPattern}$`);
const DOMAIN_RE = new RegExp(`^${domainAndPort}$`);
const REPOSITORY_RE = new RegExp(`^${remoteName}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

function invalid(input: string, why: string, cause?: unknown): ContentError {
  return new ContentError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(input)}: ${why}`, cause === undefined ? undefined : { cause });
}

/**
 * Splits a name (no tag/digest) into registry and remainder the way Docker does
 * (distribution/reference normalize.go splitDockerDomain): the first path component is a
 * registry only when it contains `.` or `:`, is `localhost`, or has uppercase letters.
 */
function splitDomain(name: string): { registry: string; remainder: string } {
  const i = name.indexOf('/');
  let registry: string;
  let remainder: string;
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = DOCKER_HUB;
    remainder = name;
  } else {
    registry = first;
    remainder = name.slice(i + 1);
  }
  if (registry === LEGACY_HUB) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { registry, remainder };
}

/**
 * Parses an image reference with Docker's normalisation: `busybox` →
 * `docker.io/library/busybox:latest`, `index.docker.io/x/y` → `docker.io/x/y`. The tag
 * `latest` is filled in only when neither a tag nor a digest is given. Registries may carry a
 * port and be hostnames, `localhost`, IPv4 or bracketed IPv6 addresses. Repositories must be
 * lowercase; tags are at most 128 characters; digests must be supported (sha256, sha512).
 * Throws ContentError INVALID_REFERENCE naming the input.
 */
export function parseReference(s: string): Reference {
  if (s === '') throw invalid(s, 'repository name must have at least one component');
  if (IDENTIFIER_RE.test(s)) throw invalid(s, 'cannot specify 64-byte hexadecimal strings as a repository name');

  // Split off the digest and the tag before looking at the domain, so `host:5000/x` keeps its port.
  let rest = s;
  let digestText: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digestText = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }

  const { registry, remainder } = splitDomain(rest);
  if (remainder.toLowerCase() !== remainder) throw invalid(s, `repository name (${remainder}) must be lowercase`);

  const full = `${registry}/${remainder}${tag !== undefined ? `:${tag}` : ''}${digestText !== undefined ? `@${digestText}` : ''}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) {
    if (tag !== undefined && !TAG_RE.test(tag)) {
      throw invalid(s, tag.length > TAG_MAX_LENGTH ? `tag is longer than ${TAG_MAX_LENGTH} characters` : `invalid tag ${JSON.stringify(tag)}`);
    }
    if (!DOMAIN_RE.test(registry)) throw invalid(s, `invalid registry ${JSON.stringify(registry)}`);
    if (!REPOSITORY_RE.test(remainder)) throw invalid(s, `invalid repository name ${JSON.stringify(remainder)}`);
    throw invalid(s, 'invalid reference format');
  }
  const name = m[1] as string;
  if (name.length > NAME_MAX_LENGTH) throw invalid(s, `repository name must not be more than ${NAME_MAX_LENGTH} characters`);

  let digest: Digest | undefined;
  if (digestText !== undefined) {
    try {
      digest = parseDigest(digestText);
    } catch (e) {
      throw invalid(s, `invalid digest ${JSON.stringify(digestText)}`, e);
    }
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return build(registry, remainder, tag, digest);
}

function build(registry: string, repository: string, tag: string | undefined, digest: Digest | undefined): Reference {
  const r: { registry: string; repository: string; tag?: string; digest?: Digest } = { registry, repository };
  if (tag !== undefined) r.tag = tag;
  if (digest !== undefined) r.digest = digest;
  return r;
}

/** `registry/repository[:tag][@digest]`, fully qualified (the canonical string form). */
export function formatReference(r: Reference): string {
  return `${formatName(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** `registry/repository` without tag or digest: the name a registry and a store key blobs by. */
export function formatName(r: Pick<Reference, 'registry' | 'repository'>): string {
  return `${r.registry}/${r.repository}`;
}

/**
 * The short form Docker prints (distribution/reference FamiliarString):
 * `docker.io/library/busybox:latest` → `busybox:latest`, `docker.io/foo/bar` → `foo/bar`;
 * references to other registries are returned in full. Unlike Docker, a Docker Hub repository
 * whose first component would read as a registry (`docker.io/foo.bar/x`) keeps its `docker.io/`
 * prefix, so the short form always parses back to the same reference.
 */
export function familiarName(r: Reference): string {
  let name = formatName(r);
  if (r.registry === DOCKER_HUB) {
    const slash = r.repository.indexOf('/');
    const first = slash === -1 ? '' : r.repository.slice(0, slash);
    if (!/[.:]/.test(first) && first !== 'localhost') {
      name = r.repository;
      if (name.startsWith(OFFICIAL_PREFIX) && !name.slice(OFFICIAL_PREFIX.length).includes('/')) {
        name = name.slice(OFFICIAL_PREFIX.length);
      }
    }
  }
  return `${name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** A copy of `r` with `tag` (validated) and without a digest. Throws INVALID_REFERENCE. */
export function withTag(r: Reference, tag: string): Reference {
  if (!TAG_RE.test(tag)) throw invalid(`${formatName(r)}:${tag}`, `invalid tag ${JSON.stringify(tag)}`);
  return build(r.registry, r.repository, tag, undefined);
}

/** A copy of `r` pinned to `digest` and without a tag. Throws INVALID_REFERENCE for a bad digest. */
export function withDigest(r: Reference, digest: string): Reference {
  let d: Digest;
  try {
    d = parseDigest(digest);
  } catch (e) {
    throw invalid(`${formatName(r)}@${digest}`, `invalid digest ${JSON.stringify(digest)}`, e);
  }
  return build(r.registry, r.repository, undefined, d);
}

/** True when `tag` is a syntactically valid tag. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}
