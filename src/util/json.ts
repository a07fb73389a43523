import { ContentError, UsageError, type ContentErrorCode } from './errors.js';

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit order (what `Array.prototype.sort`
 * does), no insignificant whitespace, `undefined` members omitted and `undefined` array items
 * written as `null` (as JSON.stringify does), `toJSON()` honoured. Equal values always give equal
 * strings, so the result can be hashed (cache keys, vertex digests).
 * Throws UsageError INVALID_ARGUMENT for values JSON cannot represent faithfully: non-finite
 * numbers, bigints, functions, symbols and cycles.
 */
export function canonicalJson(v: unknown): string {
  return encode(v, new Set(), '$');
}

function encode(v: unknown, stack: Set<object>, path: string): string {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON(key: string): unknown }).toJSON('');
  }
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new UsageError('INVALID_ARGUMENT', `canonical json: ${path} is the non-finite number ${v}`);
      return JSON.stringify(v);
    case 'object': {
      if (v === null) return 'null';
      if (stack.has(v)) throw new UsageError('INVALID_ARGUMENT', `canonical json: ${path} is a cyclic reference`);
      stack.add(v);
      try {
        if (Array.isArray(v)) {
          return `[${v.map((item, i) => (item === undefined ? 'null' : encode(item, stack, `${path}[${i}]`))).join(',')}]`;
        }
        const parts: string[] = [];
        for (const key of Object.keys(v).sort()) {
          const item = (v as Record<string, unknown>)[key];
          if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
          parts.push(`${JSON.stringify(key)}:${encode(item, stack, `${path}.${key}`)}`);
        }
        return `{${parts.join(',')}}`;
      } finally {
        stack.delete(v);
      }
    }
    default:
      throw new UsageError('INVALID_ARGUMENT', `canonical json: ${path} is a ${typeof v}, which json cannot represent`);
  }
}

/**
 * Parses UTF-8 JSON bytes (a manifest, a config) and throws ContentError `code` naming `what`
 * when they are not valid UTF-8 JSON. The result is `unknown`: validate it before use.
 */
export function parseJsonBytes(data: Uint8Array | string, what: string, code: ContentErrorCode): unknown {
  let text: string;
  try {
    text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch (e) {
    throw new ContentError(code, `${what}: not valid utf-8`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ContentError(code, `${what}: not valid json: ${(e as Error).message}`, { cause: e });
  }
}

/** UTF-8 bytes of `JSON.stringify(v)` (insertion key order, no whitespace): how tsbuild writes manifests and configs. */
export function jsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}
