import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, jsonBytes, parseJsonBytes } from '../../../src/util/json.js';
import { ContentError, UsageError } from '../../../src/util/errors.js';

describe('canonicalJson', () => {
  it.each([
    [{ b: 1, a: 2 }, '{"a":2,"b":1}'],
    [{ z: { y: [3, { d: 1, c: 2 }], x: null } }, '{"z":{"x":null,"y":[3,{"c":2,"d":1}]}}'],
    [[undefined, 1], '[null,1]'],
    [{ a: undefined, b: 'x' }, '{"b":"x"}'],
    ['line\n"quote"\u2028', JSON.stringify('line\n"quote"\u2028')],
    [{ é: 1, e: 2, E: 3, '10': 4, '9': 5 }, '{"10":4,"9":5,"E":3,"e":2,"é":1}'],
    [{ d: new Date(0) }, '{"d":"1970-01-01T00:00:00.000Z"}'],
    [true, 'true'],
    [-0.5, '-0.5'],
    [[], '[]'],
    [{}, '{}'],
  ])('%j → %s', (v, want) => {
    expect(canonicalJson(v)).toBe(want);
  });

  it('gives equal strings for equal values built in different orders', () => {
    const a: Record<string, unknown> = {};
    a.x = 1;
    a.y = { q: [1, 2], p: 'z' };
    const b = { y: { p: 'z', q: [1, 2] }, x: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(JSON.parse(canonicalJson(a))).toEqual(b);
  });

  it.each([
    [{ n: Number.NaN }, /\$\.n is the non-finite number NaN/],
    [{ a: [1, Infinity] }, /\$\.a\[1\] is the non-finite number Infinity/],
    [{ b: 1n }, /\$\.b is a bigint/],
  ])('rejects %s', (v, msg) => {
    expect(() => canonicalJson(v)).toThrow(UsageError);
    expect(() => canonicalJson(v)).toThrow(msg);
  });

  it('rejects cycles but allows shared references', () => {
    const shared = { k: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"k":1},"b":{"k":1}}');
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => canonicalJson(cyc)).toThrow(/\$\.self is a cyclic reference/);
  });
});

describe('parseJsonBytes / jsonBytes', () => {
  it('round-trips', () => {
    expect(parseJsonBytes(jsonBytes({ a: [1, 'é'] }), 'doc', 'INVALID_CONFIG')).toEqual({ a: [1, 'é'] });
  });
  it('names the document and uses the given code', () => {
    const bad = () => parseJsonBytes(Buffer.from('{"a":'), 'config sha256:abc', 'INVALID_CONFIG');
    expect(bad).toThrow(ContentError);
    expect(bad).toThrow(/^config sha256:abc: not valid json/);
    try {
      bad();
    } catch (e) {
      expect((e as ContentError).code).toBe('INVALID_CONFIG');
    }
    expect(() => parseJsonBytes(Buffer.from([0x7b, 0xff, 0x7d]), 'manifest', 'INVALID_MANIFEST')).toThrow(/manifest: not valid utf-8/);
  });
});

describe('canonicalJson properties', () => {
  it('round-trips JSON values and is idempotent and key-order independent', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const s = canonicalJson(v);
        const back = JSON.parse(s);
        expect(back).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(back)).toBe(s);
        if (back && typeof back === 'object' && !Array.isArray(back)) {
          const reversed = Object.fromEntries(Object.entries(back).reverse());
          expect(canonicalJson(reversed)).toBe(s);
        }
      }),
      { numRuns: 300 },
    );
  });
});
