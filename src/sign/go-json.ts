/**
 * JSON encoded the way Go's encoding/json `Marshal` does for the values cosign signs: map keys
 * sorted by bytes, no whitespace, and `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` …
 * (Go's HTML-safe escaping). Struct fields keep the order they are given in (callers build
 * objects in the Go struct's field order and mark maps with {@link goMap}).
 */

const GO_MAP = Symbol('goMap');

/** Marks a plain object as a Go map: its keys are sorted when encoded. */
export function goMap<T extends Record<string, unknown>>(o: T): T {
  Object.defineProperty(o, GO_MAP, { value: true, enumerable: false });
  return o;
}

function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Encodes `v` like Go's json.Marshal (see the module comment). `undefined` members are omitted. */
export function goJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return goString(v);
    case 'number':
    case 'boolean':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x) => goJson(x)).join(',')}]`;
      const o = v as Record<string, unknown> & { [GO_MAP]?: boolean };
      let keys = Object.keys(o).filter((k) => o[k] !== undefined);
      if (o[GO_MAP]) keys = keys.sort(byteCompare);
      return `{${keys.map((k) => `${goString(k)}:${goJson(o[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`go json: cannot encode a ${typeof v}`);
  }
}

/** Recursively marks every plain object in parsed JSON as a Go map (for re-encoding `interface{}` values). */
export function asGoValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(asGoValue);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = asGoValue(x);
    return goMap(out);
  }
  return v;
}
