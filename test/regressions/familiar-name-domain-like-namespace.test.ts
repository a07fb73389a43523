/**
 * Regression (found by test/fuzz/json-reference.fuzz.test.ts, seed 20261125): familiarName of a
 * Docker Hub repository whose first component looks like a registry (`index.docker.io/foo.bar/0`)
 * dropped the `docker.io/` prefix, so the short form `foo.bar/0:latest` parsed as registry
 * `foo.bar`. docker-archive RepoTags and layout ref names are written in the short form, so a
 * save/load round trip moved such an image to another registry.
 */
import { describe, expect, it } from 'vitest';
import { familiarName, formatReference, parseReference } from '../../src/oci/reference.js';

describe('familiarName of a domain-like Docker Hub namespace', () => {
  for (const input of ['index.docker.io/foo.bar/0', 'docker.io/localhost/x:1', 'docker.io/a.b/c/d@sha256:' + 'a'.repeat(64), 'docker.io/h:5000/x']) {
    it(`${input} keeps docker.io/ and round-trips`, () => {
      let r;
      try {
        r = parseReference(input);
      } catch {
        // `h:5000` is not a valid path component; nothing to round-trip
        expect(input).toContain(':5000');
        return;
      }
      expect(r.registry).toBe('docker.io');
      const fam = familiarName(r);
      expect(fam.startsWith('docker.io/')).toBe(true);
      expect(parseReference(fam)).toEqual(r);
    });
  }

  it('ordinary Docker Hub names are still shortened', () => {
    expect(familiarName(parseReference('docker.io/library/busybox:1'))).toBe('busybox:1');
    expect(familiarName(parseReference('foo/bar'))).toBe('foo/bar:latest');
    expect(formatReference(parseReference('foo.bar/x'))).toBe('foo.bar/x:latest');
  });
});
