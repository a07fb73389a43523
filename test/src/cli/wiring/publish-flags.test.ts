import { describe, expect, it } from 'vitest';
import { dockerfileName, parseProvenance, parseRegistryOutput, planPublish, splitCsv } from '../../../../src/cli/wiring/publish-flags.js';

describe('build publishing flags', () => {
  it('reads BuildKit registry outputs; leaves the others to the output parser', () => {
    expect(parseRegistryOutput('type=registry')).toEqual({ push: true, names: [], insecure: false });
    expect(parseRegistryOutput('type=registry,name=r.example/a:1,push=false')).toEqual({ push: false, names: ['r.example/a:1'], insecure: false });
    expect(parseRegistryOutput('type=image,"name=r/a:1,r/b:2",push=true,registry.insecure=true')).toEqual({ push: true, names: ['r/a:1', 'r/b:2'], insecure: true });
    expect(parseRegistryOutput('type=image,push=true')).toEqual({ push: true, names: [], insecure: false });
    expect(parseRegistryOutput('type=image')).toBeUndefined();
    expect(parseRegistryOutput('type=oci,dest=x.tar')).toBeUndefined();
    expect(parseRegistryOutput('out-dir')).toBeUndefined();
    expect(() => parseRegistryOutput('type=registry,compression=zstd')).toThrow(/unsupported option compression/);
    expect(() => parseRegistryOutput('type=registry,push=maybe')).toThrow(/want true or false/);
    expect(splitCsv('a,"b,c",d')).toEqual(['a', 'b,c', 'd']);
    expect(() => splitCsv('a,"b')).toThrow(/unterminated/);
  });

  it('--provenance values', () => {
    expect(parseProvenance(undefined)).toBeUndefined();
    expect(parseProvenance(true)).toEqual({ mode: 'min' });
    expect(parseProvenance('false')).toBeUndefined();
    expect(parseProvenance('mode=max')).toEqual({ mode: 'max' });
    expect(parseProvenance('min')).toEqual({ mode: 'min' });
    expect(parseProvenance('mode=max,builder-id=https://ci.example/jobs/42')).toEqual({ mode: 'max', builderId: 'https://ci.example/jobs/42' });
    expect(() => parseProvenance('.')).toThrow(/--provenance=mode=max/);
    expect(() => parseProvenance('mode=max,builder-id=not a uri')).toThrow(/builder-id must be a URI/);
  });

  it('plans: names from the output win over -t; sign/sbom/provenance need push and a key', () => {
    expect(planPublish({}, ['r/a:1'], undefined)).toEqual({ output: undefined });
    expect(planPublish({}, [], 'type=oci,dest=x')).toEqual({ output: 'type=oci,dest=x' });
    const p = planPublish({ push: true, sign: true, key: 'k', sbom: true, provenance: 'mode=max' }, ['r/a:1', 'r/a:1', 'r/a:2'], undefined);
    expect(p.plan).toMatchObject({ refs: ['r/a:1', 'r/a:2'], signKey: 'k', sbom: true, provenance: 'max' });
    expect(planPublish({ push: true, sign: true, key: 'k', provenance: 'builder-id=https://ci.example/1' }, ['r/a'], undefined).plan).toMatchObject({ provenance: 'min', provenanceBuilderId: 'https://ci.example/1' });
    expect(planPublish({}, ['r/a:1'], 'type=registry,name=r/b').plan?.refs).toEqual(['docker.io/r/b:latest']);
    expect(planPublish({}, [], 'type=registry,name=127.0.0.1:5000/x,registry.insecure=true').plan?.connection.insecure).toBe(true);
    expect(() => planPublish({ push: true }, [], undefined)).toThrow(/needs a name/);
    expect(() => planPublish({ sign: true, key: 'k' }, ['r/a'], undefined)).toThrow(/need --push/);
    expect(() => planPublish({ push: true, sbom: true }, ['r/a'], undefined)).toThrow(/--sign --key/);
    expect(() => planPublish({ push: true, sign: true }, ['r/a'], undefined)).toThrow(/--sign needs --key/);
    expect(() => planPublish({ push: true, key: 'k' }, ['r/a'], undefined)).toThrow(/only used with --sign/);
    expect(() => planPublish({ push: true }, ['r/a'], 'type=local,dest=d')).toThrow(/cannot be combined/);
    expect(() => planPublish({}, [], 'type=image,name=r/a')).toThrow(/push=true/);
    expect(() => planPublish({}, [], 'type=registry,name=r/a@sha256:' + '0'.repeat(64))).toThrow(/digest reference/);
  });

  it('names the Dockerfile relative to the context, never by a host path', () => {
    expect(dockerfileName('ctx', undefined)).toBe('Dockerfile');
    expect(dockerfileName('ctx', '-')).toBe('-');
    expect(dockerfileName('ctx', 'ctx/docker/Dockerfile.prod')).toBe('docker/Dockerfile.prod');
    expect(dockerfileName('ctx', '/elsewhere/Dockerfile.ci')).toBe('Dockerfile.ci');
    expect(dockerfileName('-', 'Dockerfile.x')).toBe('Dockerfile.x');
  });
});
