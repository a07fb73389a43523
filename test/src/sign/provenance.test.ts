import Ajv from 'ajv';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Digest } from '../../../src/oci/digest.js';
import { buildProvenance, imagePurl, SLSA_PROVENANCE_V1, TSBUILD_BUILD_TYPE, type ProvenanceInput } from '../../../src/sign/provenance.js';

/**
 * The SLSA v1 provenance predicate as a JSON Schema, transcribed from the spec's field tables
 * (https://slsa.dev/spec/v1.0/provenance#schema) and the in-toto ResourceDescriptor
 * (https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md): REQUIRED
 * fields, types, "at least one of uri/digest/content", RFC 3339 timestamps, lowercase hex digests.
 */
const TIMESTAMP = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' };
const URI = { type: 'string', pattern: '^[a-zA-Z][a-zA-Z0-9+.-]*:' };
const DIGEST_SET = { type: 'object', minProperties: 1, additionalProperties: { type: 'string', pattern: '^[0-9a-f]+$' } };
const RESOURCE_DESCRIPTOR = {
  type: 'object',
  additionalProperties: false,
  properties: {
    uri: URI,
    digest: DIGEST_SET,
    name: { type: 'string' },
    downloadLocation: URI,
    mediaType: { type: 'string' },
    content: { type: 'string', contentEncoding: 'base64', pattern: '^[A-Za-z0-9+/]*={0,2}$' },
    annotations: { type: 'object' },
  },
  anyOf: [{ required: ['uri'] }, { required: ['digest'] }, { required: ['content'] }],
};
const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['buildDefinition', 'runDetails'],
  properties: {
    buildDefinition: {
      type: 'object',
      additionalProperties: false,
      required: ['buildType', 'externalParameters'],
      properties: {
        buildType: URI,
        externalParameters: { type: 'object' },
        internalParameters: { type: 'object' },
        resolvedDependencies: { type: 'array', items: RESOURCE_DESCRIPTOR },
      },
    },
    runDetails: {
      type: 'object',
      additionalProperties: false,
      required: ['builder'],
      properties: {
        builder: {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: {
            id: URI,
            version: { type: 'object', additionalProperties: { type: 'string' } },
            builderDependencies: { type: 'array', items: RESOURCE_DESCRIPTOR },
          },
        },
        metadata: {
          type: 'object',
          additionalProperties: false,
          properties: { invocationId: { type: 'string' }, startedOn: TIMESTAMP, finishedOn: TIMESTAMP },
        },
        byproducts: { type: 'array', items: RESOURCE_DESCRIPTOR },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(SCHEMA);

const D1 = `sha256:${'a'.repeat(64)}` as Digest;
const D2 = `sha256:${'b'.repeat(64)}` as Digest;
const DOCKERFILE = 'FROM debian:12\nARG TOKEN\nRUN --mount=type=secret,id=npm true\n';

function input(over: Partial<ProvenanceInput> = {}): ProvenanceInput {
  return {
    mode: 'min',
    dockerfilePath: 'docker/Dockerfile',
    dockerfile: Buffer.from(DOCKERFILE),
    target: 'final',
    buildArgs: { VERSION: '1.2', A: 'x' },
    labels: { team: 'infra' },
    secretIds: ['npm'],
    platform: 'linux/amd64',
    baseImages: [
      { ref: 'debian:12', registry: 'docker.io', repository: 'library/debian', tag: '12', digest: D1, platform: 'linux/amd64' },
      { ref: '127.0.0.1:5000/tools/go:1.22', registry: '127.0.0.1:5000', repository: 'tools/go', tag: '1.22', digest: D2, platform: 'linux/amd64' },
      // the same image used twice (FROM and COPY --from) is one dependency
      { ref: 'debian:12', registry: 'docker.io', repository: 'library/debian', tag: '12', digest: D1, platform: 'linux/amd64' },
    ],
    internal: { network: 'host', noCache: false },
    builderVersion: '0.1.0',
    invocationId: '6f0c1c8e-4b8e-4c59-9f0a-1b2c3d4e5f60',
    startedOn: new Date('2026-01-02T03:04:05.678Z'),
    finishedOn: new Date('2026-01-02T03:05:00.000Z'),
    layers: [{ digest: D2, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 123 }],
    ...over,
  };
}

describe('SLSA v1 provenance', () => {
  it('matches the SLSA v1 predicate schema in both modes', () => {
    for (const mode of ['min', 'max'] as const) {
      const p = JSON.parse(JSON.stringify(buildProvenance(input({ mode })))) as unknown;
      expect(validate(p), `${mode}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
    expect(SLSA_PROVENANCE_V1).toBe('https://slsa.dev/provenance/v1');
  });

  it('the schema check is not vacuous: a missing builder id or a descriptor with nothing in it fails', () => {
    const p = JSON.parse(JSON.stringify(buildProvenance(input()))) as { runDetails: { builder: { id?: string } }; buildDefinition: { resolvedDependencies: unknown[] } };
    delete p.runDetails.builder.id;
    expect(validate(p)).toBe(false);
    const q = JSON.parse(JSON.stringify(buildProvenance(input()))) as { buildDefinition: { resolvedDependencies: unknown[] } };
    q.buildDefinition.resolvedDependencies.push({ name: 'nothing' });
    expect(validate(q)).toBe(false);
  });

  it('records parameters, base images with digests and the Dockerfile digest; secrets only by id', () => {
    const p = buildProvenance(input());
    expect(p.buildDefinition.buildType).toBe(TSBUILD_BUILD_TYPE);
    expect(p.buildDefinition.externalParameters).toEqual({
      dockerfile: 'docker/Dockerfile',
      target: 'final',
      buildArgs: { A: 'x', VERSION: '1.2' },
      labels: { team: 'infra' },
      secrets: [{ id: 'npm' }],
      platform: 'linux/amd64',
    });
    expect(Object.keys(p.buildDefinition.externalParameters['buildArgs'] as object)).toEqual(['A', 'VERSION']);
    expect(p.buildDefinition.internalParameters).toEqual({ network: 'host', noCache: false, provenanceMode: 'min' });
    const sha = createHash('sha256').update(DOCKERFILE).digest('hex');
    expect(p.buildDefinition.resolvedDependencies).toEqual([
      { uri: 'pkg:docker/debian@12?platform=linux%2Famd64', digest: { sha256: 'a'.repeat(64) }, name: 'debian:12' },
      { uri: 'pkg:docker/127.0.0.1:5000/tools/go@1.22?platform=linux%2Famd64', digest: { sha256: 'b'.repeat(64) }, name: '127.0.0.1:5000/tools/go:1.22' },
      { name: 'docker/Dockerfile', digest: { sha256: sha } },
    ]);
    expect(p.runDetails).toEqual({
      builder: { id: 'https://tsbuild.dev/builder', version: { tsbuild: '0.1.0' } },
      metadata: { invocationId: '6f0c1c8e-4b8e-4c59-9f0a-1b2c3d4e5f60', startedOn: '2026-01-02T03:04:05Z', finishedOn: '2026-01-02T03:05:00Z' },
    });
  });

  it('mode=max adds the Dockerfile text and the layers; min has neither', () => {
    const max = buildProvenance(input({ mode: 'max' }));
    const df = max.buildDefinition.resolvedDependencies!.at(-1)!;
    expect(Buffer.from(df.content!, 'base64').toString()).toBe(DOCKERFILE);
    expect(max.runDetails.byproducts).toEqual([{ name: 'layer', digest: { sha256: 'b'.repeat(64) }, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', annotations: { size: 123 } }]);
    const min = JSON.stringify(buildProvenance(input()));
    expect(min).not.toContain(Buffer.from(DOCKERFILE).toString('base64'));
    expect(min).not.toContain('byproducts');
  });

  it('a builder id from the caller; stable bytes for the same input', () => {
    expect(buildProvenance(input({ builderId: 'https://ci.example/job/7' })).runDetails.builder.id).toBe('https://ci.example/job/7');
    expect(JSON.stringify(buildProvenance(input()))).toBe(JSON.stringify(buildProvenance(input())));
  });

  it('rejects an empty invocation id, a finish before the start and non-sha256 digests', () => {
    expect(() => buildProvenance(input({ invocationId: '' }))).toThrow(/invocation id/);
    expect(() => buildProvenance(input({ finishedOn: new Date('2020-01-01T00:00:00Z') }))).toThrow(/before startedOn/);
    expect(() => buildProvenance(input({ baseImages: [{ ref: 'x', registry: 'docker.io', repository: 'library/x', digest: 'sha512:00' as Digest, platform: 'linux/amd64' }] }))).toThrow(/not sha256/);
  });

  it('package URLs of images: Docker Hub names shortened, other registries kept, tag defaults to latest', () => {
    expect(imagePurl({ registry: 'docker.io', repository: 'library/alpine', tag: '3.19', digest: D1, platform: 'linux/arm64/v8' })).toBe('pkg:docker/alpine@3.19?platform=linux%2Farm64%2Fv8');
    expect(imagePurl({ registry: 'docker.io', repository: 'bitnami/redis', digest: D1, platform: 'linux/amd64' })).toBe('pkg:docker/bitnami/redis@latest?platform=linux%2Famd64');
    expect(imagePurl({ registry: 'ghcr.io', repository: 'org/app', tag: 'v1', digest: D1, platform: 'linux/amd64' })).toBe('pkg:docker/ghcr.io/org/app@v1?platform=linux%2Famd64');
  });
});
