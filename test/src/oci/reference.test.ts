import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContentError } from '../../../src/util/errors.js';
import { familiarName, formatReference, parseReference, withDigest, withTag, isValidTag, type Reference } from '../../../src/oci/reference.js';

const D = 'sha256:' + 'e'.repeat(64);
const D2 = 'sha256:' + '0123456789abcdef'.repeat(4);
const D512 = 'sha512:' + 'ab'.repeat(64);

interface Good {
  in: string;
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  full: string;
  familiar: string;
}

const good: Good[] = [
  { in: 'busybox', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { in: 'busybox:1.36', registry: 'docker.io', repository: 'library/busybox', tag: '1.36', full: 'docker.io/library/busybox:1.36', familiar: 'busybox:1.36' },
  { in: 'library/busybox', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { in: 'docker.io/busybox', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { in: 'docker.io/library/busybox:musl', registry: 'docker.io', repository: 'library/busybox', tag: 'musl', full: 'docker.io/library/busybox:musl', familiar: 'busybox:musl' },
  { in: 'index.docker.io/busybox', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { in: 'index.docker.io/foo/bar:v1', registry: 'docker.io', repository: 'foo/bar', tag: 'v1', full: 'docker.io/foo/bar:v1', familiar: 'foo/bar:v1' },
  { in: 'foo/bar', registry: 'docker.io', repository: 'foo/bar', tag: 'latest', full: 'docker.io/foo/bar:latest', familiar: 'foo/bar:latest' },
  { in: 'foo/bar/baz', registry: 'docker.io', repository: 'foo/bar/baz', tag: 'latest', full: 'docker.io/foo/bar/baz:latest', familiar: 'foo/bar/baz:latest' },
  { in: 'docker.io/library/a/b', registry: 'docker.io', repository: 'library/a/b', tag: 'latest', full: 'docker.io/library/a/b:latest', familiar: 'library/a/b:latest' },
  { in: 'localhost/foo', registry: 'localhost', repository: 'foo', tag: 'latest', full: 'localhost/foo:latest', familiar: 'localhost/foo:latest' },
  { in: 'localhost:5000/foo/bar:t', registry: 'localhost:5000', repository: 'foo/bar', tag: 't', full: 'localhost:5000/foo/bar:t', familiar: 'localhost:5000/foo/bar:t' },
  { in: 'localhost:5000', registry: 'docker.io', repository: 'library/localhost', tag: '5000', full: 'docker.io/library/localhost:5000', familiar: 'localhost:5000' },
  { in: 'example.com/app', registry: 'example.com', repository: 'app', tag: 'latest', full: 'example.com/app:latest', familiar: 'example.com/app:latest' },
  { in: 'example.com:8443/team/app:1.0', registry: 'example.com:8443', repository: 'team/app', tag: '1.0', full: 'example.com:8443/team/app:1.0', familiar: 'example.com:8443/team/app:1.0' },
  { in: 'Example.COM/app', registry: 'Example.COM', repository: 'app', tag: 'latest', full: 'Example.COM/app:latest', familiar: 'Example.COM/app:latest' },
  { in: 'Registry/app', registry: 'Registry', repository: 'app', tag: 'latest', full: 'Registry/app:latest', familiar: 'Registry/app:latest' },
  { in: 'myhost:5000/app', registry: 'myhost:5000', repository: 'app', tag: 'latest', full: 'myhost:5000/app:latest', familiar: 'myhost:5000/app:latest' },
  { in: '127.0.0.1:5000/app:x', registry: '127.0.0.1:5000', repository: 'app', tag: 'x', full: '127.0.0.1:5000/app:x', familiar: '127.0.0.1:5000/app:x' },
  { in: '10.1.2.3/app', registry: '10.1.2.3', repository: 'app', tag: 'latest', full: '10.1.2.3/app:latest', familiar: '10.1.2.3/app:latest' },
  { in: '[::1]:5000/app', registry: '[::1]:5000', repository: 'app', tag: 'latest', full: '[::1]:5000/app:latest', familiar: '[::1]:5000/app:latest' },
  { in: '[2001:db8::1]/app:v2', registry: '[2001:db8::1]', repository: 'app', tag: 'v2', full: '[2001:db8::1]/app:v2', familiar: '[2001:db8::1]/app:v2' },
  { in: 'xn--n3h.com/myimage:xn--n3h.com', registry: 'xn--n3h.com', repository: 'myimage', tag: 'xn--n3h.com', full: 'xn--n3h.com/myimage:xn--n3h.com', familiar: 'xn--n3h.com/myimage:xn--n3h.com' },
  { in: 'a-b.c-d.e/f', registry: 'a-b.c-d.e', repository: 'f', tag: 'latest', full: 'a-b.c-d.e/f:latest', familiar: 'a-b.c-d.e/f:latest' },
  { in: 'foo_bar.com:8080', registry: 'docker.io', repository: 'library/foo_bar.com', tag: '8080', full: 'docker.io/library/foo_bar.com:8080', familiar: 'foo_bar.com:8080' },
  { in: 'a__b/c---d/e.f_g', registry: 'docker.io', repository: 'a__b/c---d/e.f_g', tag: 'latest', full: 'docker.io/a__b/c---d/e.f_g:latest', familiar: 'a__b/c---d/e.f_g:latest' },
  { in: 'busybox:Latest_V1.2-rc', registry: 'docker.io', repository: 'library/busybox', tag: 'Latest_V1.2-rc', full: 'docker.io/library/busybox:Latest_V1.2-rc', familiar: 'busybox:Latest_V1.2-rc' },
  { in: `busybox:_${'x'.repeat(127)}`, registry: 'docker.io', repository: 'library/busybox', tag: `_${'x'.repeat(127)}`, full: `docker.io/library/busybox:_${'x'.repeat(127)}`, familiar: `busybox:_${'x'.repeat(127)}` },
  { in: `busybox@${D}`, registry: 'docker.io', repository: 'library/busybox', digest: D, full: `docker.io/library/busybox@${D}`, familiar: `busybox@${D}` },
  { in: `busybox:1.36@${D}`, registry: 'docker.io', repository: 'library/busybox', tag: '1.36', digest: D, full: `docker.io/library/busybox:1.36@${D}`, familiar: `busybox:1.36@${D}` },
  { in: `localhost:5000/app@${D2}`, registry: 'localhost:5000', repository: 'app', digest: D2, full: `localhost:5000/app@${D2}`, familiar: `localhost:5000/app@${D2}` },
  { in: `[::1]:5000/a/b:t@${D}`, registry: '[::1]:5000', repository: 'a/b', tag: 't', digest: D, full: `[::1]:5000/a/b:t@${D}`, familiar: `[::1]:5000/a/b:t@${D}` },
  { in: `quay.io/x/y@${D512}`, registry: 'quay.io', repository: 'x/y', digest: D512, full: `quay.io/x/y@${D512}`, familiar: `quay.io/x/y@${D512}` },
  { in: 'ghcr.io/a/b/c/d/e:1', registry: 'ghcr.io', repository: 'a/b/c/d/e', tag: '1', full: 'ghcr.io/a/b/c/d/e:1', familiar: 'ghcr.io/a/b/c/d/e:1' },
  { in: '0/1', registry: 'docker.io', repository: '0/1', tag: 'latest', full: 'docker.io/0/1:latest', familiar: '0/1:latest' },
  { in: 'e'.repeat(63), registry: 'docker.io', repository: 'library/' + 'e'.repeat(63), tag: 'latest', full: `docker.io/library/${'e'.repeat(63)}:latest`, familiar: `${'e'.repeat(63)}:latest` },
  // 255 characters of registry/repository is the maximum
  { in: `example.com/${'a'.repeat(243)}`, registry: 'example.com', repository: 'a'.repeat(243), tag: 'latest', full: `example.com/${'a'.repeat(243)}:latest`, familiar: `example.com/${'a'.repeat(243)}:latest` },
];

const bad: { in: string; why: RegExp }[] = [
  { in: '', why: /at least one component/ },
  { in: 'e'.repeat(64), why: /64-byte hexadecimal/ },
  { in: 'Uppercase', why: /must be lowercase/ },
  { in: 'Uppercase:tag', why: /must be lowercase/ },
  { in: 'foo/Bar', why: /must be lowercase/ },
  { in: 'docker.io/Library/busybox', why: /must be lowercase/ },
  { in: 'example.com/App', why: /must be lowercase/ },
  { in: `busybox:${'x'.repeat(129)}`, why: /longer than 128/ },
  { in: 'busybox:-tag', why: /invalid tag/ },
  { in: 'busybox:.tag', why: /invalid tag/ },
  { in: 'busybox:', why: /invalid tag/ },
  { in: 'busybox:t@g', why: /invalid/ },
  { in: 'busybox@sha256:abc', why: /invalid/ },
  { in: `busybox@sha256:${'E'.repeat(64)}`, why: /invalid digest/ },
  { in: `busybox@md5:${'e'.repeat(32)}`, why: /invalid digest/ },
  { in: `busybox@${D}@${D}`, why: /invalid/ },
  { in: `busybox@`, why: /invalid/ },
  { in: ':tag', why: /invalid/ },
  { in: '/busybox', why: /invalid/ },
  { in: 'busybox/', why: /invalid repository/ },
  { in: 'foo//bar', why: /invalid repository/ },
  { in: '-foo', why: /invalid repository/ },
  { in: 'foo-', why: /invalid repository/ },
  { in: 'foo..bar', why: /invalid repository/ },
  { in: 'foo___bar', why: /invalid repository/ },
  { in: 'aa/asdf$$^/aa', why: /invalid repository/ },
  { in: 'foo bar', why: /invalid/ },
  { in: 'foo_bar.com:8080/app', why: /invalid registry/ },
  { in: '-example.com/app', why: /invalid registry/ },
  { in: 'example-.com/app', why: /invalid registry/ },
  { in: 'example.com:/app', why: /invalid registry/ },
  { in: 'example.com:port/app', why: /invalid registry/ },
  { in: '[fe80::1%eth0]:5000/app', why: /invalid registry/ },
  { in: '[::1/app', why: /invalid/ },
  { in: '[2001:db8::1]', why: /invalid/ },
  { in: 'localhost:5000/', why: /invalid repository/ },
  { in: `example.com/${'a'.repeat(244)}`, why: /more than 255/ },
  { in: 'foo:bar:baz', why: /invalid/ },
];

describe('parseReference', () => {
  it.each(good)('parses $in', (c) => {
    const r = parseReference(c.in);
    const want: Record<string, string> = { registry: c.registry, repository: c.repository };
    if (c.tag !== undefined) want.tag = c.tag;
    if (c.digest !== undefined) want.digest = c.digest;
    expect({ ...r }).toEqual(want);
    expect(formatReference(r)).toBe(c.full);
    expect(familiarName(r)).toBe(c.familiar);
    // the canonical form and the familiar form parse back to the same reference
    expect(parseReference(formatReference(r))).toEqual(r);
    expect(parseReference(familiarName(r))).toEqual(r);
  });

  it.each(bad)('rejects $in', (c) => {
    let err: unknown;
    try {
      parseReference(c.in);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ContentError);
    const ce = err as ContentError;
    expect(ce.code).toBe('INVALID_REFERENCE');
    expect(ce.message).toContain(JSON.stringify(c.in));
    expect(ce.message).toMatch(c.why);
  });

  it('keeps the digest error as the cause', () => {
    try {
      parseReference(`busybox@md5:${'e'.repeat(32)}`);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).cause).toBeInstanceOf(ContentError);
      expect(((e as Error).cause as ContentError).code).toBe('INVALID_DIGEST');
    }
  });

  it('has at least 40 cases', () => {
    expect(good.length + bad.length).toBeGreaterThanOrEqual(40);
  });
});

describe('withTag / withDigest', () => {
  const base: Reference = parseReference(`localhost:5000/app:old@${D}`);
  it('replaces the tag and drops the digest', () => {
    expect(formatReference(withTag(base, 'new'))).toBe('localhost:5000/app:new');
  });
  it('pins a digest and drops the tag', () => {
    expect(formatReference(withDigest(base, D2))).toBe(`localhost:5000/app@${D2}`);
  });
  it('rejects bad tags and digests', () => {
    expect(() => withTag(base, 'no/slash')).toThrow(/invalid tag "no\/slash"/);
    expect(() => withTag(base, 'x'.repeat(129))).toThrow(ContentError);
    expect(() => withDigest(base, 'sha256:123')).toThrow(/invalid digest "sha256:123"/);
    expect(isValidTag('v1.0_rc-1')).toBe(true);
    expect(isValidTag('.hidden')).toBe(false);
  });
});

describe('parseReference properties', () => {
  const alnum = fc.stringMatching(/^[a-z0-9]{1,8}$/);
  const sep = fc.constantFrom('.', '_', '__', '-', '--');
  const component = fc.tuple(alnum, fc.array(fc.tuple(sep, alnum), { maxLength: 2 })).map(([a, rest]) => a + rest.map(([s, b]) => s + b).join(''));
  const repo = fc.array(component, { minLength: 1, maxLength: 3 }).map((cs) => cs.join('/'));
  const host = fc.oneof(
    fc.constant('localhost'),
    fc.tuple(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?$/), fc.constantFrom('io', 'com', 'example')).map(([a, b]) => `${a}.${b}`),
    fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.')),
    fc.constantFrom('[::1]', '[2001:db8::5]'),
  );
  // docker.io itself normalises (library/ prefix), so it is left to the table above
  const registry = fc.tuple(host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })).map(([h, p]) => (p === undefined ? h : `${h}:${p}`)).filter((r) => r !== 'docker.io');
  const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
  const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);

  it('formatReference and familiarName parse back to the same reference', () => {
    fc.assert(
      fc.property(registry, repo, fc.option(tag, { nil: undefined }), fc.option(digest, { nil: undefined }), (reg, rep, t, d) => {
        const s = `${reg}/${rep}${t !== undefined ? `:${t}` : ''}${d !== undefined ? `@${d}` : ''}`;
        const r = parseReference(s);
        expect(r.registry).toBe(reg);
        expect(r.repository).toBe(rep);
        expect(r.tag).toBe(t ?? (d === undefined ? 'latest' : undefined));
        expect(r.digest).toBe(d);
        expect(parseReference(formatReference(r))).toEqual(r);
        expect(parseReference(familiarName(r))).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });
});
