/**
 * Fuzzing of the JSON validators (src/oci/validate.ts: manifest, index, config, descriptor) and of
 * reference parsing (src/oci/reference.ts). Inputs: arbitrary JSON values, and valid documents
 * mutated at random paths (values replaced by other JSON values, keys deleted, types swapped,
 * prototype-looking keys added); references built from the grammar's pieces and mutated strings.
 *
 * Properties: each validator returns its input (which then survives a JSON round trip) or throws a
 * ContentError with its own code, never a TypeError; parseReference returns a reference whose
 * formatted form parses to itself, or throws ContentError INVALID_REFERENCE, in bounded time.
 * Budget and replay: see ./budget.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/oci/digest.js';
import { familiarName, formatReference, parseReference } from '../../src/oci/reference.js';
import { validateConfig, validateDescriptor, validateIndex, validateManifest } from '../../src/oci/validate.js';
import { ContentError } from '../../src/util/errors.js';
import { fuzzParams, fuzzTimeout } from './budget.js';
import { assertNoInternalCause } from './internal.js';

const D1 = 'sha256:' + 'a'.repeat(64);
const D2 = 'sha256:' + '0123456789abcdef'.repeat(4);
const D3 = 'sha512:' + 'b'.repeat(128);

const MANIFEST = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D1, size: 1234 },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D2, size: 99, annotations: { a: 'b' } },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: D3, size: 0, urls: ['https://example.com/x'] },
  ],
  subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D2, size: 10 },
  annotations: { 'org.opencontainers.image.created': '2024-01-02T03:04:05Z' },
};
const DOCKER_MANIFEST = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: D1, size: 7 },
  layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: D2, size: 3 }],
};
const INDEX = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D1, size: 500, platform: { architecture: 'amd64', os: 'linux' } },
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D2, size: 501, platform: { architecture: 'arm', os: 'linux', variant: 'v7', 'os.features': ['x'] } },
    // embedded data: base64 "hi" (2 bytes) with its real digest
    { mediaType: 'application/octet-stream', digest: 'sha256:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4', size: 2, data: 'aGk=' },
  ],
  annotations: { 'org.opencontainers.image.ref.name': '1' },
};
const CONFIG = {
  created: '2024-01-02T03:04:05.123456789Z',
  author: 'x',
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: '1:1',
    ExposedPorts: { '80/tcp': {} },
    Env: ['PATH=/bin'],
    Entrypoint: ['/bin/sh'],
    Cmd: null,
    Volumes: { '/data': {} },
    WorkingDir: '/',
    Labels: { a: 'b' },
    StopSignal: 'SIGTERM',
    Healthcheck: { Test: ['CMD', 'true'], Interval: 1000000000, Retries: 3 },
    OnBuild: null,
    Shell: ['/bin/sh', '-c'],
  },
  rootfs: { type: 'layers', diff_ids: [D1, D2] },
  history: [{ created: '2024-01-02T03:04:05Z', created_by: 'x', empty_layer: true }, { comment: 'y' }],
};

type Json = unknown;
type Mut = { path: number[]; op: 'set' | 'delete' | 'wrap' | 'addKey'; value: Json; key: string };

const jsonArb: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom<Json>(null, true, 0, -1, 1.5, 2 ** 53, -0, 1e308, '', 'x', [], {}, D1, 'sha256:', 'sha256:' + 'A'.repeat(64), 'md5:' + 'a'.repeat(32), 'application/json', 'not a type', '2024-13-45T99:99:99Z', '=', 'aGk', 'http://[::1', 'layers', ['x', 1], { architecture: 'amd64', os: 'linux' }) },
);

const mutArb: fc.Arbitrary<Mut> = fc.record({
  path: fc.array(fc.nat(), { minLength: 0, maxLength: 5 }),
  op: fc.constantFrom('set' as const, 'set' as const, 'delete' as const, 'wrap' as const, 'addKey' as const),
  value: jsonArb,
  key: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'mediaType', 'digest', 'size', 'platform', 'data', 'urls', 'subject', 'config', 'Healthcheck', 'os.version', 'length', ''),
});

/** Applies a mutation to a deep copy: walks `path` (indices into the keys/elements at each level), then edits there. */
function mutateDoc(doc: Json, muts: readonly Mut[]): Json {
  let root: Json = JSON.parse(JSON.stringify(doc));
  for (const m0 of muts) {
    // generated values may be shared constants: never edit them in place
    const m = { ...m0, value: structuredClone(m0.value) };
    let parentObj: Record<string, Json> | Json[] | undefined;
    let parentKey: string | number | undefined;
    let cur: Json = root;
    for (const step of m.path) {
      if (cur === null || typeof cur !== 'object') break;
      const keys = Array.isArray(cur) ? cur.map((_, i) => i) : Object.keys(cur);
      if (keys.length === 0) break;
      const k = keys[step % keys.length]!;
      parentObj = cur as Record<string, Json>;
      parentKey = k;
      cur = (cur as Record<string | number, Json>)[k];
    }
    const replace = (v: Json) => {
      if (parentObj === undefined || parentKey === undefined) root = v;
      else (parentObj as Record<string | number, Json>)[parentKey] = v;
    };
    switch (m.op) {
      case 'set':
        replace(m.value);
        break;
      case 'wrap':
        replace([cur]);
        break;
      case 'delete':
        if (parentObj && parentKey !== undefined) {
          if (Array.isArray(parentObj)) parentObj.splice(parentKey as number, 1);
          else delete parentObj[parentKey as string];
        }
        break;
      case 'addKey':
        if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
          // a JSON-parsed own property, as a hostile document would carry it
          Object.defineProperty(cur, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
        }
        break;
    }
  }
  // round-trip through text, as documents arrive from the wire
  return JSON.parse(JSON.stringify(root) ?? 'null');
}

const docArb = (base: Json) => fc.oneof({ weight: 1, arbitrary: jsonArb }, { weight: 4, arbitrary: fc.array(mutArb, { minLength: 1, maxLength: 4 }).map((ms) => mutateDoc(base, ms)) });

function check(fn: (j: Json) => unknown, json: Json, codes: readonly string[], what: string): void {
  let out: unknown;
  try {
    out = fn(json);
  } catch (e) {
    if (!(e instanceof ContentError) || !codes.includes(e.code)) throw new Error(`${what} threw ${(e as Error)?.stack ?? String(e)} for ${JSON.stringify(json)}`);
    assertNoInternalCause(e, what);
    expect(e.message.length).toBeGreaterThan(0);
    return;
  }
  expect(out).toBe(json);
  // a valid document stays valid after a round trip through its text
  expect(() => fn(JSON.parse(JSON.stringify(json)))).not.toThrow();
}

describe('fuzz: manifest, index, config and descriptor validation', () => {
  it('the seeds are valid', () => {
    expect(() => validateManifest(MANIFEST)).not.toThrow();
    expect(() => validateManifest(DOCKER_MANIFEST)).not.toThrow();
    expect(() => validateIndex(INDEX)).not.toThrow();
    expect(() => validateConfig(CONFIG)).not.toThrow();
  });

  const cases = [
    { name: 'validateManifest', fn: (j: Json) => validateManifest(j), base: MANIFEST as Json, codes: ['INVALID_MANIFEST'] },
    { name: 'validateManifest (docker)', fn: (j: Json) => validateManifest(j), base: DOCKER_MANIFEST as Json, codes: ['INVALID_MANIFEST'] },
    { name: 'validateIndex', fn: (j: Json) => validateIndex(j), base: INDEX as Json, codes: ['INVALID_MANIFEST'] },
    { name: 'validateConfig', fn: (j: Json) => validateConfig(j), base: CONFIG as Json, codes: ['INVALID_CONFIG'] },
    { name: 'validateDescriptor', fn: (j: Json) => validateDescriptor(j, 'd'), base: INDEX.manifests[1] as Json, codes: ['INVALID_DESCRIPTOR'] },
  ];
  for (const c of cases) {
    it(
      `${c.name}: a typed result or a ContentError ${c.codes.join('/')}, never a TypeError`,
      () => {
        fc.assert(fc.property(docArb(c.base), (j) => check(c.fn, j, c.codes, c.name)), fuzzParams(2500, 0.1));
      },
      fuzzTimeout(),
    );
  }

  it(
    'a validated manifest has the typed fields its users rely on',
    () => {
      fc.assert(
        fc.property(docArb(MANIFEST), (j) => {
          let m;
          try {
            m = validateManifest(j);
          } catch {
            return;
          }
          expect(parseDigest(m.config.digest)).toBe(m.config.digest);
          expect(Number.isSafeInteger(m.config.size) && m.config.size >= 0).toBe(true);
          for (const l of m.layers) {
            expect(parseDigest(l.digest)).toBe(l.digest);
            expect(Number.isSafeInteger(l.size) && l.size >= 0).toBe(true);
            expect(typeof l.mediaType).toBe('string');
          }
        }),
        fuzzParams(2500, 0.1),
      );
    },
    fuzzTimeout(),
  );
});

// ---- references ----

const component = fc.oneof(
  fc.constantFrom('library', 'busybox', 'a', 'foo-bar', 'foo__bar', 'foo.bar', 'foo_bar', 'x--y', 'UPPER', 'a-', '-a', '_', '.', '..', '', 'a'.repeat(70), '\u00e9'),
  fc.stringMatching(/^[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4}){0,2}$/),
);
const registry = fc.constantFrom('', 'docker.io/', 'index.docker.io/', 'localhost/', 'localhost:5000/', 'example.com/', 'Example.COM:443/', '127.0.0.1:5000/', '[::1]:5000/', '[fe80::1%eth0]/', 'a_b.com/', 'host:/', 'host:-1/', '-bad.com/', 'UPPER/');
const tag = fc.oneof(fc.constantFrom('', ':latest', ':1.0', ':_x', ':.x', ':' + 'v'.repeat(128), ':' + 'v'.repeat(129), ':a/b', '::', ':UP-per.1'), fc.stringMatching(/^:[\w][\w.-]{0,10}$/));
const digest = fc.constantFrom('', '@' + D1, '@' + D2, '@' + D3, '@sha256:' + 'A'.repeat(64), '@sha256:abc', '@md5:' + 'a'.repeat(32), '@sha256:' + 'a'.repeat(63), '@', '@@' + D1, '@sha384:' + 'c'.repeat(96));
const refArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(registry, fc.array(component, { minLength: 1, maxLength: 3 }), tag, digest).map(([r, cs, t, d]) => r + cs.join('/') + t + d) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ unit: fc.constantFrom(...'aZ09._-:/@[]%'.split('')), maxLength: 40 })).map(([s]) => s) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  // long runs of the characters the grammar's repetitions accept (catastrophic backtracking)
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', 'a-', 'a.', 'a_', 'a__', '-', 'a/', 'a.b:'), fc.integer({ min: 20, max: 400 }), fc.constantFrom('!', '-', '/', ':', '@', 'A', '')).map(([p, n, end]) => p.repeat(n) + end) },
);

/** Longest a single parseReference may take. */
const REF_TIME_BOX_MS = 250;

describe('fuzz: reference parsing', () => {
  it(
    'parseReference returns a reference whose formatted and familiar forms parse back to it, or INVALID_REFERENCE',
    () => {
      fc.assert(
        fc.property(refArb, (s) => {
          const started = performance.now();
          let r;
          try {
            r = parseReference(s);
          } catch (e) {
            if (!(e instanceof ContentError) || e.code !== 'INVALID_REFERENCE') throw new Error(`parseReference(${JSON.stringify(s)}) threw ${(e as Error)?.stack ?? String(e)}`);
            const ms = performance.now() - started;
            if (ms > REF_TIME_BOX_MS) throw new Error(`parseReference(${JSON.stringify(s)}) took ${ms.toFixed(0)} ms`);
            return;
          }
          const ms = performance.now() - started;
          if (ms > REF_TIME_BOX_MS) throw new Error(`parseReference(${JSON.stringify(s)}) took ${ms.toFixed(0)} ms`);
          expect(r.tag !== undefined || r.digest !== undefined).toBe(true);
          const formatted = formatReference(r);
          expect(parseReference(formatted)).toEqual(r);
          expect(formatReference(parseReference(formatted))).toBe(formatted);
          expect(parseReference(familiarName(r))).toEqual(r);
          expect(r.repository).toBe(r.repository.toLowerCase());
        }),
        fuzzParams(10000, 0.4),
      );
    },
    fuzzTimeout(),
  );
});
