/**
 * Validation against the REAL OCI image-spec JSON schemas (draft-04) with ajv, as an oracle
 * independent of src/oci/validate.ts. The schemas are not committed: they come from the
 * image-spec Go module (`go mod download`, through the Go module proxy) into a cache dir.
 *
 * The schema files `$ref` each other by file name relative to their (nested) `id`s, which the
 * Go validator resolves by mapping every `https://opencontainers.org/schema/...` namespace onto
 * the one schema directory (schema/loader.go). We do the same statically: every `$ref` to
 * `x.json#frag` becomes the absolute `https://opencontainers.org/schema/x.json#frag`, nested
 * `id`s (which only serve as bases for those refs) are dropped, and each file is registered
 * under its canonical URI. Validation keywords are untouched. `format`s the schemas use
 * (`date-time`, `uri`) are added; the annotation-only `media` keyword is declared.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv04Module from 'ajv-draft-04';
import type { ErrorObject, ValidateFunction } from 'ajv';

/** The image-spec version whose schemas are used. */
export const IMAGE_SPEC_MODULE = 'github.com/opencontainers/image-spec@v1.1.0';

/** Cache for the Go module download (override with TSBUILD_GOMODCACHE). */
export const GO_CACHE_DIR = process.env.TSBUILD_GOMODCACHE ?? '/var/cache/tsbuild-test/gomod';

const BASE = 'https://opencontainers.org/schema/';

// ajv-draft-04 is CommonJS: under NodeNext the default import is the module object, whose
// `default` is the class (module.exports is the class itself as well).
const Ajv04 = ((Ajv04Module as unknown as { default?: typeof Ajv04Module }).default ?? Ajv04Module) as unknown as typeof Ajv04Module.default;

/** Which schema to validate against. */
export type SchemaKind = 'manifest' | 'index' | 'config' | 'descriptor' | 'layout';

const FILES: Record<SchemaKind, string> = {
  manifest: 'image-manifest-schema.json',
  index: 'image-index-schema.json',
  config: 'config-schema.json',
  descriptor: 'content-descriptor.json',
  layout: 'image-layout-schema.json',
};

/** One schema violation, with the field named the way src/oci/validate.ts names it. */
export interface SchemaViolation {
  /** e.g. `manifest.layers[2].digest`; for a missing required property, the property itself. */
  readonly field: string;
  readonly keyword: string;
  readonly message: string;
}

/** Validators compiled from the real schemas. */
export interface OciSchemas {
  /** The schema directory used. */
  readonly dir: string;
  /** Violations of `doc` against the schema of `kind`; empty when valid. `root` prefixes fields. */
  validate(kind: SchemaKind, doc: unknown, root?: string): SchemaViolation[];
}

/**
 * A field path in validate.ts style: `.name` for identifier-like keys, `["some.key"]` otherwise,
 * `[n]` for array indexes.
 */
export function fieldPath(root: string, segments: readonly string[]): string {
  let p = root;
  for (const s of segments) {
    if (/^\d+$/.test(s)) p += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) p += `.${s}`;
    else p += `[${JSON.stringify(s)}]`;
  }
  return p;
}

function decodePointer(ptr: string): string[] {
  if (ptr === '') return [];
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function toViolation(root: string, e: ErrorObject): SchemaViolation {
  const segs = decodePointer(e.instancePath);
  if (e.keyword === 'required') segs.push(String((e.params as { missingProperty: string }).missingProperty));
  return { field: fieldPath(root, segs), keyword: e.keyword, message: e.message ?? e.keyword };
}

/** Rewrites refs to absolute canonical URIs and drops nested ids (see the module comment). */
function canonicalise(v: unknown, top: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => canonicalise(x, false));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'id' && typeof x === 'string' && !top) continue;
    if (k === '$ref' && typeof x === 'string' && !x.startsWith('#')) {
      const [file, frag] = x.split('#') as [string, string | undefined];
      out[k] = `${BASE}${file.replace(/^.*\//, '')}${frag !== undefined ? `#${frag}` : ''}`;
      continue;
    }
    // `properties` maps property names to schemas: a property named "id" is a schema, not an id
    out[k] = k === 'properties' || k === 'patternProperties' || k === 'definitions' ? mapValues(x, (s) => canonicalise(s, false)) : canonicalise(x, false);
  }
  return out;
}

function mapValues(v: unknown, f: (x: unknown) => unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, f(x)]));
}

// RFC 3339 date-time, as ajv-formats' "date-time" (full mode) checks it.
const DATE_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
// RFC 3986 absolute URI: a scheme, then no whitespace.
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/;

/** Compiles validators from the schema files in `dir`. */
export function compileOciSchemas(dir: string): OciSchemas {
  const ajv = new Ajv04({ allErrors: true, strict: true, strictTypes: false });
  ajv.addFormat('date-time', DATE_TIME);
  ajv.addFormat('uri', URI);
  ajv.addKeyword({ keyword: 'media', schemaType: 'object' });
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const raw = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
    const schema = canonicalise(raw, true) as Record<string, unknown>;
    schema.id = `${BASE}${f}`;
    delete schema.$schema; // all are draft-04, which Ajv04 is
    ajv.addSchema(schema);
  }
  const compiled = new Map<SchemaKind, ValidateFunction>();
  const get = (k: SchemaKind): ValidateFunction => {
    let v = compiled.get(k);
    if (!v) {
      v = ajv.getSchema(`${BASE}${FILES[k]}`);
      if (!v) throw new Error(`schema ${FILES[k]} missing in ${dir}`);
      compiled.set(k, v);
    }
    return v;
  };
  return {
    dir,
    validate(kind, doc, root = kind) {
      const v = get(kind);
      if (v(doc)) return [];
      return (v.errors ?? []).map((e) => toViolation(root, e));
    },
  };
}

let cached: { schemas?: OciSchemas; why: string } | undefined;

/**
 * Downloads the image-spec module (once per machine: the Go module cache is reused) and compiles
 * its schemas. Returns `why` (non-empty) instead when that is impossible: no `go`, or the module
 * proxy unreachable. Synchronous so tests can decide `it.skipIf` at collection time.
 */
export function ociSchemas(): { schemas?: OciSchemas; why: string } {
  if (cached) return cached;
  cached = load();
  return cached;
}

function load(): { schemas?: OciSchemas; why: string } {
  const goVersion = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (goVersion.error || goVersion.status !== 0) return { why: 'go is not installed: cannot fetch the OCI image-spec JSON schemas' };
  mkdirSync(GO_CACHE_DIR, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'oci-schemas-'));
  try {
    const r = spawnSync('go', ['mod', 'download', '-json', IMAGE_SPEC_MODULE], {
      cwd: work,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, GOPATH: GO_CACHE_DIR, GOMODCACHE: join(GO_CACHE_DIR, 'pkg', 'mod'), GOFLAGS: '-mod=mod', GO111MODULE: 'on' },
    });
    let info: { Dir?: string; Error?: string } = {};
    try {
      info = JSON.parse(r.stdout) as typeof info;
    } catch {
      // fall through with the raw output below
    }
    if (r.status !== 0 || !info.Dir) {
      return { why: `go mod download ${IMAGE_SPEC_MODULE} failed: ${(info.Error ?? (r.stderr || r.stdout || String(r.error))).trim()}` };
    }
    return { schemas: compileOciSchemas(join(info.Dir, 'schema')), why: '' };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
