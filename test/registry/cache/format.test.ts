import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { sha256 } from '../../../src/oci/digest.js';
import type { ImageManifest } from '../../../src/oci/manifest.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { ContentError } from '../../../src/util/errors.js';
import {
  CACHE_ARTIFACT_TYPE,
  CACHE_CONFIG_MEDIA_TYPE,
  cacheLayers,
  checkCacheManifest,
  encodeCacheConfig,
  encodeCacheManifest,
  parseCacheConfig,
  type CacheEntry,
} from '../../../registry/cache/format.js';

const d = (s: string) => sha256(s);
const layerA: Descriptor = { mediaType: MediaTypes.OciLayerGzip, digest: d('blob-a'), size: 120 };
const layerB: Descriptor = { mediaType: MediaTypes.OciLayer, digest: d('blob-b'), size: 2048 };
const entries: CacheEntry[] = [
  { key: d('k2'), parent: d('k1'), created: '2026-01-02T03:04:05Z', layer: { descriptor: layerB, diffId: d('diff-b') } },
  { key: d('k1'), parent: d('base'), created: '2026-01-02T03:04:00Z', layer: { descriptor: layerA, diffId: d('diff-a') } },
  { key: d('k3'), parent: d('k2'), created: '2026-01-02T03:04:06.123456789Z' },
  // a second record with the same blob (e.g. the same COPY in two stages)
  { key: d('k4'), created: '2026-01-02T03:04:07+02:00', layer: { descriptor: layerA, diffId: d('diff-a') } },
];

/** A config with `records` as given (and the two layers listed). */
const raw = (records: unknown, extra: Record<string, unknown> = {}) => Buffer.from(JSON.stringify({ version: 1, records, ...extra }));
const good = () => JSON.parse(encodeCacheConfig(entries).toString()) as { records: Record<string, unknown>[] };

function expectInvalid(bytes: Uint8Array, layers: readonly Descriptor[], message: RegExp): void {
  let err: unknown;
  try {
    parseCacheConfig(bytes, layers, 'build cache r/x:cache');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ContentError);
  expect((err as ContentError).code).toBe('INVALID_CONFIG');
  expect((err as ContentError).message).toMatch(/^build cache r\/x:cache: /);
  expect((err as ContentError).message).toMatch(message);
}

describe('cache config (de)serialisation', () => {
  it('round-trips records; bytes are canonical (sorted by key, fixed field order, independent of input order)', () => {
    const bytes = encodeCacheConfig(entries);
    expect(encodeCacheConfig([...entries].reverse()).equals(bytes)).toBe(true);
    const layers = cacheLayers(entries);
    expect(layers.map((l) => l.digest)).toEqual([layerA.digest, layerB.digest].sort());
    const back = parseCacheConfig(bytes, layers, 'x');
    expect(back.map((e) => e.key)).toEqual([...entries.map((e) => e.key)].sort());
    const byKey = new Map(back.map((e) => [e.key, e]));
    for (const e of entries) expect(byKey.get(e.key)).toEqual(e);
    expect(Object.keys(good().records[0]!)).toEqual(expect.arrayContaining(['key', 'created']));
    const withLayer = good().records.find((r) => r['layer'])!;
    expect(Object.keys(withLayer['layer'] as object)).toEqual(['mediaType', 'digest', 'size', 'diffId']);
  });

  it('one record per key: the first wins', () => {
    const dup: CacheEntry[] = [entries[0]!, { ...entries[0]!, created: '2030-01-01T00:00:00Z' }];
    const back = parseCacheConfig(encodeCacheConfig(dup), cacheLayers(dup), 'x');
    expect(back).toEqual([entries[0]]);
  });

  it('the manifest is an OCI artifact manifest listing the config and every layer', () => {
    const config = encodeCacheConfig(entries);
    const cd: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(config), size: config.length };
    const m = JSON.parse(encodeCacheManifest(cd, cacheLayers(entries)).toString()) as ImageManifest & { artifactType: string };
    expect(m.schemaVersion).toBe(2);
    expect(m.mediaType).toBe(MediaTypes.OciManifest);
    expect(m.artifactType).toBe(CACHE_ARTIFACT_TYPE);
    expect(m.config).toEqual(cd);
    expect(m.layers).toEqual(cacheLayers(entries));
    expect(checkCacheManifest(m, 'x')).toBe(m);
  });

  it('a manifest that is not a build cache is refused, naming what it is', () => {
    const img = { schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: { mediaType: MediaTypes.OciConfig, digest: d('c'), size: 2 }, layers: [] } as ImageManifest;
    expect(() => checkCacheManifest(img, 'build cache r/x:v1')).toThrow(/build cache r\/x:v1: not a build cache \(config media type "application\/vnd.oci.image.config.v1\+json"/);
    const other = { ...img, config: { ...img.config, mediaType: CACHE_CONFIG_MEDIA_TYPE }, artifactType: 'application/example' } as ImageManifest;
    expect(() => checkCacheManifest(other, 'x')).toThrow(/artifactType "application\/example"/);
    const docker = { ...img, mediaType: MediaTypes.DockerManifest, config: { ...img.config, mediaType: CACHE_CONFIG_MEDIA_TYPE } } as ImageManifest;
    expect(() => checkCacheManifest(docker, 'x')).toThrow(/manifest media type/);
  });
});

describe('cache config validation (corrupt or hostile input gives a clear error)', () => {
  const layers = cacheLayers(entries);
  const withRecord = (patch: (r: Record<string, unknown>) => void) => {
    const j = good();
    patch(j.records[0]!);
    return Buffer.from(JSON.stringify(j));
  };
  const firstWithLayer = (patch: (l: Record<string, unknown>) => void) => {
    const j = good();
    const r = j.records.find((x) => x['layer'])!;
    patch(r['layer'] as Record<string, unknown>);
    return Buffer.from(JSON.stringify(j));
  };

  it.each([
    ['not JSON', Buffer.from('{"version":1,'), /cache config is not JSON/],
    ['an array', Buffer.from('[]'), /not a JSON object/],
    ['null', Buffer.from('null'), /not a JSON object/],
    ['an unknown version', raw([], { version: 2 }), /unsupported cache config version 2/],
    ['records missing', Buffer.from('{"version":1}'), /records is not an array/],
    ['a record that is a string', raw(['x']), /records\[0\] is not an object/],
  ])('%s', (_name, bytes, message) => expectInvalid(bytes, layers, message));

  it('bad fields name the record and field', () => {
    expectInvalid(withRecord((r) => (r['key'] = 'sha256:xyz')), layers, /records\[0\]\.key: invalid digest "sha256:xyz"/);
    expectInvalid(withRecord((r) => (r['key'] = 42)), layers, /records\[0\]\.key: invalid digest 42/);
    expectInvalid(withRecord((r) => (r['parent'] = '/etc/passwd')), layers, /records\[0\]\.parent: invalid digest/);
    expectInvalid(withRecord((r) => (r['created'] = 'yesterday')), layers, /records\[0\]\.created: not an RFC 3339 time: "yesterday"/);
    expectInvalid(withRecord((r) => (r['created'] = '2026-13-45T99:99:99Z')), layers, /records\[0\]\.created/);
    expectInvalid(withRecord((r) => (r['layer'] = [])), layers, /records\[0\]\.layer is not an object/);
    expectInvalid(firstWithLayer((l) => (l['mediaType'] = 'application/x-sh')), layers, /layer\.mediaType: not a layer media type: "application\/x-sh"/);
    expectInvalid(firstWithLayer((l) => (l['size'] = -1)), layers, /layer\.size: invalid size -1/);
    expectInvalid(firstWithLayer((l) => (l['size'] = 1e300)), layers, /layer\.size: invalid size/);
    expectInvalid(firstWithLayer((l) => (l['diffId'] = 'md5:abc')), layers, /layer\.diffId: invalid digest/);
    expectInvalid(firstWithLayer((l) => (l['digest'] = d('elsewhere'))), layers, /is not listed in the manifest's layers/);
    expectInvalid(firstWithLayer((l) => (l['size'] = 7)), layers, /is listed in the manifest as .* of \d+ bytes, the record says .* of 7 bytes/);
    const j = good();
    j.records[1]!['key'] = j.records[0]!['key'];
    expectInvalid(Buffer.from(JSON.stringify(j)), layers, /records\[1\]\.key: duplicate key/);
  });

  it('a huge config or record count is refused before it is walked', () => {
    expectInvalid(Buffer.alloc((16 << 20) + 1, 0x20), layers, /exceeds the 16777216-byte limit/);
    expectInvalid(Buffer.from(`{"version":1,"records":[${Array.from({ length: 100_001 }, () => '0').join(',')}]}`), layers, /100001 records exceed the limit/);
  });

  it('arbitrary JSON never crashes the parser: it parses or throws INVALID_CONFIG', () => {
    const record = fc.record(
      {
        key: fc.oneof(fc.constant(d('k') as string), fc.string()),
        parent: fc.oneof(fc.constant(d('p') as string), fc.anything()),
        created: fc.oneof(fc.constant('2026-01-01T00:00:00Z'), fc.anything()),
        layer: fc.oneof(fc.constant({ mediaType: layerA.mediaType, digest: layerA.digest, size: layerA.size, diffId: d('x') }), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ version: fc.oneof(fc.constant(1), fc.anything()), records: fc.oneof(fc.array(record), fc.anything()) })), (v) => {
        const bytes = Buffer.from(JSON.stringify(v) ?? 'undefined');
        try {
          const out = parseCacheConfig(bytes, layers, 'x');
          for (const e of out) expect(e.key).toMatch(/^sha256:[0-9a-f]{64}$/);
        } catch (e) {
          expect(e).toBeInstanceOf(ContentError);
          expect((e as ContentError).code).toBe('INVALID_CONFIG');
        }
      }),
      { numRuns: 500 },
    );
  });
});
