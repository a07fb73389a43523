/**
 * HTTP header names used by the registry client, defined here once (lower case, as undici
 * reports them). Distribution spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
export const Headers = {
  Accept: 'accept',
  Authorization: 'authorization',
  ContentLength: 'content-length',
  ContentRange: 'content-range',
  ContentType: 'content-type',
  DockerContentDigest: 'docker-content-digest',
  DockerDistributionApiVersion: 'docker-distribution-api-version',
  DockerUploadUuid: 'docker-upload-uuid',
  Link: 'link',
  Location: 'location',
  /** Minimum chunk size for chunked uploads (distribution-spec "Pushing a blob in chunks"). */
  OciChunkMinLength: 'oci-chunk-min-length',
  /** Set by registries supporting the referrers API when a manifest with a subject is pushed. */
  OciSubject: 'oci-subject',
  OciFiltersApplied: 'oci-filters-applied',
  Range: 'range',
  RetryAfter: 'retry-after',
  UserAgent: 'user-agent',
  WwwAuthenticate: 'www-authenticate',
} as const;
