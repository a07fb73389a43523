import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate, pickChallenge } from '../../../registry/transport/challenge.js';

describe('parseWwwAuthenticate', () => {
  it('parses a bearer challenge with quoted params', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:library/busybox:pull' } },
    ]);
  });

  it('keeps commas inside quoted values and unescapes quotes', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://a/t",scope="repository:a/b:pull,push",error="say \\"hi\\""');
    expect(c!.params.scope).toBe('repository:a/b:pull,push');
    expect(c!.params.error).toBe('say "hi"');
  });

  it('splits several challenges in one header and over several headers', () => {
    const cs = parseWwwAuthenticate(['Basic realm="r1", Bearer realm="https://a/t", service=svc', 'Negotiate']);
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'negotiate']);
    expect(cs[1]!.params).toEqual({ realm: 'https://a/t', service: 'svc' });
    expect(pickChallenge(cs)?.scheme).toBe('bearer');
  });

  it('lower-cases scheme and parameter names, tolerates spaces and junk', () => {
    const cs = parseWwwAuthenticate('  BASIC   Realm = "Registry Realm" ,, ');
    expect(cs).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(pickChallenge(parseWwwAuthenticate('Negotiate abc'))).toBeUndefined();
  });
});
