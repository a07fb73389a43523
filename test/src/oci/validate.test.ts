import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/oci/digest.js';
import { emptyImage } from '../../../src/oci/empty.js';
import type { Image, Layer } from '../../../src/oci/image.js';
import { MediaTypes, type MediaType } from '../../../src/oci/media-types.js';
import { appendLayers, withConfig, withFlavour, withManifestAnnotations } from '../../../src/oci/mutate.js';
import {
  MAX_CONFIG_SIZE,
  MAX_LAYERS,
  validateConfig,
  validateDescriptor,
  validateImage,
  validateIndex,
  validateManifest,
} from '../../../src/oci/validate.js';
import { ContentError } from '../../../src/util/errors.js';
import { ociSchemas, type SchemaKind } from '../../helpers/oci-schemas.js';

const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;
const D1 = sha256('one');
const D2 = sha256('two');

function metaLayer(n: number, mediaType: MediaType = MediaTypes.OciLayerGzip): Layer {
  const boom = async (): Promise<never> => {
    throw new Error('layer bytes read');
  };
  return {
    digest: async () => sha256(`blob ${n}`),
    diffId: async () => sha256(`tar ${n}`),
    size: async () => 10 * n,
    mediaType: async () => mediaType,
    descriptor: boom,
    compressed: boom,
    uncompressed: boom,
  };
}

const json = async (b: Promise<Uint8Array>): Promise<any> => JSON.parse(Buffer.from(await b).toString('utf8'));
const clone = <T>(v: T): T => structuredClone(v);

function validator(kind: SchemaKind): (doc: unknown) => unknown {
  switch (kind) {
    case 'manifest':
      return (d) => validateManifest(d);
    case 'index':
      return (d) => validateIndex(d);
    case 'config':
      return (d) => validateConfig(d);
    case 'descriptor':
      return (d) => validateDescriptor(d, 'descriptor');
    default:
      throw new Error(`no validator for ${kind}`);
  }
}

function ourError(kind: SchemaKind, doc: unknown): ContentError | undefined {
  try {
    validator(kind)(doc);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(ContentError);
    return e as ContentError;
  }
}

const GOOD_MANIFEST = {
  schemaVersion: 2,
  mediaType: MediaTypes.OciManifest,
  config: { mediaType: MediaTypes.OciConfig, digest: D1, size: 100 },
  layers: [
    { mediaType: MediaTypes.OciLayerGzip, digest: D1, size: 1 },
    { mediaType: MediaTypes.OciLayer, digest: D2, size: 2, urls: ['https://example.com/blob'], annotations: { 'org.example.k': 'v' } },
    { mediaType: MediaTypes.OciLayerZstd, digest: D2, size: 3 },
  ],
  subject: { mediaType: MediaTypes.OciManifest, digest: D2, size: 500 },
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};
const GOOD_INDEX = {
  schemaVersion: 2,
  mediaType: MediaTypes.OciIndex,
  manifests: [
    { mediaType: MediaTypes.OciManifest, digest: D1, size: 500, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { mediaType: MediaTypes.OciManifest, digest: D2, size: 600, platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1040', 'os.features': ['win32k'] } },
  ],
  annotations: { a: 'b' },
};
const GOOD_CONFIG = {
  created: '2024-05-06T07:08:09.123456789Z',
  author: 'someone',
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: '1000:1000',
    ExposedPorts: { '80/tcp': {} },
    Env: ['PATH=/usr/bin', 'A=b'],
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: null,
    Volumes: { '/data': {} },
    WorkingDir: '/app',
    Labels: { 'org.example': 'x' },
    StopSignal: 'SIGTERM',
    ArgsEscaped: true,
  },
  rootfs: { type: 'layers', diff_ids: [D1, D2] },
  history: [{ created: '2024-05-06T07:08:09+02:00', created_by: 'ADD x', comment: 'c' }, { created_by: 'ENV a=b', empty_layer: true }, { author: 'me' }],
};
const GOOD_DESCRIPTOR = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2, data: Buffer.from('{}').toString('base64') };

type Mutation = (doc: any) => void;
interface BrokenCase {
  kind: SchemaKind;
  name: string;
  mutate: Mutation;
  field: string;
}

const base = (kind: SchemaKind): any =>
  clone(kind === 'manifest' ? GOOD_MANIFEST : kind === 'index' ? GOOD_INDEX : kind === 'config' ? GOOD_CONFIG : GOOD_DESCRIPTOR);

/** Broken documents that both our validator and the real schemas reject, on the same field. */
const BOTH: BrokenCase[] = [
  { kind: 'manifest', name: 'schemaVersion 1', mutate: (d) => (d.schemaVersion = 1), field: 'manifest.schemaVersion' },
  { kind: 'manifest', name: 'schemaVersion missing', mutate: (d) => delete d.schemaVersion, field: 'manifest.schemaVersion' },
  { kind: 'manifest', name: 'config missing', mutate: (d) => delete d.config, field: 'manifest.config' },
  { kind: 'manifest', name: 'layers missing', mutate: (d) => delete d.layers, field: 'manifest.layers' },
  { kind: 'manifest', name: 'layers an object', mutate: (d) => (d.layers = {}), field: 'manifest.layers' },
  { kind: 'manifest', name: 'layer digest malformed', mutate: (d) => (d.layers[2].digest = 'not-a-digest'), field: 'manifest.layers[2].digest' },
  { kind: 'manifest', name: 'layer digest uppercase algorithm', mutate: (d) => (d.layers[1].digest = `SHA256:${'a'.repeat(64)}`), field: 'manifest.layers[1].digest' },
  { kind: 'manifest', name: 'layer size a string', mutate: (d) => (d.layers[0].size = '12'), field: 'manifest.layers[0].size' },
  { kind: 'manifest', name: 'layer size fractional', mutate: (d) => (d.layers[0].size = 1.5), field: 'manifest.layers[0].size' },
  { kind: 'manifest', name: 'layer size missing', mutate: (d) => delete d.layers[1].size, field: 'manifest.layers[1].size' },
  { kind: 'manifest', name: 'layer mediaType malformed', mutate: (d) => (d.layers[0].mediaType = 'not a media type'), field: 'manifest.layers[0].mediaType' },
  { kind: 'manifest', name: 'layer url malformed', mutate: (d) => (d.layers[1].urls = ['not a url']), field: 'manifest.layers[1].urls[0]' },
  { kind: 'manifest', name: 'config mediaType missing', mutate: (d) => delete d.config.mediaType, field: 'manifest.config.mediaType' },
  { kind: 'manifest', name: 'annotation value a number', mutate: (d) => (d.annotations['org.example'] = 1), field: 'manifest.annotations["org.example"]' },
  { kind: 'manifest', name: 'layer annotation value null', mutate: (d) => (d.layers[1].annotations.k = null), field: 'manifest.layers[1].annotations.k' },
  { kind: 'manifest', name: 'subject digest missing', mutate: (d) => delete d.subject.digest, field: 'manifest.subject.digest' },
  { kind: 'manifest', name: 'artifactType malformed', mutate: (d) => (d.artifactType = 'nope'), field: 'manifest.artifactType' },
  { kind: 'index', name: 'manifests missing', mutate: (d) => delete d.manifests, field: 'index.manifests' },
  { kind: 'index', name: 'schemaVersion a string', mutate: (d) => (d.schemaVersion = '2'), field: 'index.schemaVersion' },
  { kind: 'index', name: 'platform without os', mutate: (d) => delete d.manifests[0].platform.os, field: 'index.manifests[0].platform.os' },
  { kind: 'index', name: 'platform architecture a number', mutate: (d) => (d.manifests[1].platform.architecture = 64), field: 'index.manifests[1].platform.architecture' },
  { kind: 'index', name: 'os.features a string', mutate: (d) => (d.manifests[1].platform['os.features'] = 'win32k'), field: 'index.manifests[1].platform["os.features"]' },
  { kind: 'index', name: 'entry digest missing', mutate: (d) => delete d.manifests[1].digest, field: 'index.manifests[1].digest' },
  { kind: 'config', name: 'architecture missing', mutate: (d) => delete d.architecture, field: 'config.architecture' },
  { kind: 'config', name: 'os a number', mutate: (d) => (d.os = 1), field: 'config.os' },
  { kind: 'config', name: 'rootfs missing', mutate: (d) => delete d.rootfs, field: 'config.rootfs' },
  { kind: 'config', name: 'rootfs.type wrong', mutate: (d) => (d.rootfs.type = 'layer'), field: 'config.rootfs.type' },
  { kind: 'config', name: 'diff_ids missing', mutate: (d) => delete d.rootfs.diff_ids, field: 'config.rootfs.diff_ids' },
  { kind: 'config', name: 'created not RFC 3339', mutate: (d) => (d.created = 'yesterday'), field: 'config.created' },
  { kind: 'config', name: 'history created not RFC 3339', mutate: (d) => (d.history[0].created = '2024-01-01 00:00:00'), field: 'config.history[0].created' },
  { kind: 'config', name: 'empty_layer a string', mutate: (d) => (d.history[1].empty_layer = 'yes'), field: 'config.history[1].empty_layer' },
  { kind: 'config', name: 'Env a string', mutate: (d) => (d.config.Env = 'PATH=/bin'), field: 'config.config.Env' },
  { kind: 'config', name: 'Env item a number', mutate: (d) => (d.config.Env[1] = 5), field: 'config.config.Env[1]' },
  { kind: 'config', name: 'Entrypoint a string', mutate: (d) => (d.config.Entrypoint = '/bin/sh'), field: 'config.config.Entrypoint' },
  { kind: 'config', name: 'Labels value a number', mutate: (d) => (d.config.Labels.n = 1), field: 'config.config.Labels.n' },
  { kind: 'config', name: 'ExposedPorts entry a string', mutate: (d) => (d.config.ExposedPorts['443/tcp'] = 'yes'), field: 'config.config.ExposedPorts["443/tcp"]' },
  { kind: 'config', name: 'ArgsEscaped a string', mutate: (d) => (d.config.ArgsEscaped = 'true'), field: 'config.config.ArgsEscaped' },
  { kind: 'config', name: 'os.version a number', mutate: (d) => (d['os.version'] = 10), field: 'config["os.version"]' },
  { kind: 'descriptor', name: 'size missing', mutate: (d) => delete d.size, field: 'descriptor.size' },
  { kind: 'descriptor', name: 'mediaType without subtype', mutate: (d) => (d.mediaType = 'application'), field: 'descriptor.mediaType' },
  { kind: 'descriptor', name: 'not an object', mutate: () => undefined, field: 'descriptor' },
];

/** Broken documents only our validator rejects (the schemas are looser here), field named. */
const OURS_ONLY: BrokenCase[] = [
  { kind: 'manifest', name: 'negative layer size', mutate: (d) => (d.layers[1].size = -1), field: 'manifest.layers[1].size' },
  { kind: 'manifest', name: 'unsupported digest algorithm', mutate: (d) => (d.layers[0].digest = `md5:${'a'.repeat(32)}`), field: 'manifest.layers[0].digest' },
  { kind: 'manifest', name: 'short sha256', mutate: (d) => (d.layers[2].digest = 'sha256:xyz'), field: 'manifest.layers[2].digest' },
  { kind: 'manifest', name: 'index media type', mutate: (d) => (d.mediaType = MediaTypes.OciIndex), field: 'manifest.mediaType' },
  { kind: 'manifest', name: 'huge config', mutate: (d) => (d.config.size = MAX_CONFIG_SIZE + 1), field: 'manifest.config.size' },
  { kind: 'manifest', name: 'too many layers', mutate: (d) => (d.layers = Array.from({ length: MAX_LAYERS + 1 }, () => d.layers[0])), field: 'manifest.layers' },
  { kind: 'manifest', name: 'unsafe size', mutate: (d) => (d.layers[0].size = 2 ** 60), field: 'manifest.layers[0].size' },
  { kind: 'index', name: 'manifest media type', mutate: (d) => (d.mediaType = MediaTypes.OciManifest), field: 'index.mediaType' },
  { kind: 'config', name: 'diff id not a digest', mutate: (d) => (d.rootfs.diff_ids[1] = 'sha256:abc'), field: 'config.rootfs.diff_ids[1]' },
  { kind: 'config', name: 'negative healthcheck interval', mutate: (d) => (d.config.Healthcheck = { Test: ['NONE'], Interval: -1 }), field: 'config.config.Healthcheck.Interval' },
  { kind: 'descriptor', name: 'data does not match size', mutate: (d) => (d.size = 3), field: 'descriptor.data' },
  { kind: 'descriptor', name: 'data does not match digest', mutate: (d) => (d.data = Buffer.from('[]').toString('base64')), field: 'descriptor.data' },
];

function brokenDoc(c: BrokenCase): unknown {
  if (c.name === 'not an object') return ['not', 'an', 'object'];
  const d = base(c.kind);
  c.mutate(d);
  return d;
}

const { schemas, why } = ociSchemas();
if (why) console.warn('skip: ' + why);

describe('validators accept well-formed documents', () => {
  it.each(['manifest', 'index', 'config', 'descriptor'] as const)('%s', (kind) => {
    expect(ourError(kind, base(kind))).toBeUndefined();
  });
  it('accept Docker schema 2 documents', () => {
    const m = { ...clone(GOOD_MANIFEST), mediaType: MediaTypes.DockerManifest };
    expect(() => validateManifest(m)).not.toThrow();
    expect(() => validateIndex({ ...clone(GOOD_INDEX), mediaType: MediaTypes.DockerManifestList })).not.toThrow();
    expect(() => validateConfig({ ...clone(GOOD_CONFIG), container: 'abc', docker_version: '24', config: { ...GOOD_CONFIG.config, Healthcheck: { Test: ['CMD', 'true'], Interval: 30e9, Retries: 3 }, OnBuild: null, Shell: ['/bin/sh', '-c'] } })).not.toThrow();
  });
});

describe('the real OCI schemas agree that the good documents are good', () => {
  it.skipIf(!!why).each(['manifest', 'index', 'config', 'descriptor'] as const)('%s', (kind) => {
    expect(schemas!.validate(kind, base(kind))).toEqual([]);
  });
});

describe('broken documents fail both validators on the same field', () => {
  it.each(BOTH)('$kind: $name → $field', (c) => {
    const doc = brokenDoc(c);
    const e = ourError(c.kind, doc);
    expect(e, 'our validator accepted it').toBeDefined();
    expect(e!.code).toBe(c.kind === 'config' ? 'INVALID_CONFIG' : c.kind === 'descriptor' ? 'INVALID_DESCRIPTOR' : 'INVALID_MANIFEST');
    expect(e!.message.startsWith(`${c.field}: `), e!.message).toBe(true);
    if (schemas) {
      const v = schemas.validate(c.kind, doc);
      expect(v.map((x) => x.field), JSON.stringify(v)).toContain(c.field);
    }
  });

  it('has a table of at least 30 broken documents', () => {
    expect(BOTH.length).toBeGreaterThanOrEqual(30);
  });
});

describe('stricter than the schemas', () => {
  it.each(OURS_ONLY)('$kind: $name → $field', (c) => {
    const doc = brokenDoc(c);
    const e = ourError(c.kind, doc);
    expect(e, 'our validator accepted it').toBeDefined();
    expect(e!.message.startsWith(`${c.field}: `), e!.message).toBe(true);
  });

  it('names an invalid digest with its value', () => {
    const d = base('manifest');
    d.layers[2].digest = 'sha256:xyz';
    expect(() => validateManifest(d)).toThrow('manifest.layers[2].digest: invalid digest "sha256:xyz"');
  });
});

describe('tsbuild-produced documents pass the real schemas', () => {
  const img = appendLayers(
    withConfig(emptyImage(PLATFORM), {
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], Labels: { a: 'b' } },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
    { layer: metaLayer(1), history: { created: '2024-01-01T00:00:01Z', created_by: 'ADD rootfs.tar /' } },
    { layer: metaLayer(2, MediaTypes.OciLayerZstd) },
  );
  const annotated = withManifestAnnotations(img, { 'org.opencontainers.image.title': 't' });

  it('our validators accept them', async () => {
    await validateImage(emptyImage(PLATFORM));
    await validateImage(img);
    await validateImage(annotated);
    await validateImage(withFlavour(appendLayers(emptyImage(PLATFORM), { layer: metaLayer(3) }), 'docker'));
  });

  it.skipIf(!!why)('appendLayers output: manifest and config', async () => {
    for (const i of [img, annotated]) {
      expect(schemas!.validate('manifest', await json(i.rawManifest()))).toEqual([]);
      expect(schemas!.validate('config', await json(i.rawConfig()))).toEqual([]);
      for (const l of (await i.manifest()).layers) expect(schemas!.validate('descriptor', l)).toEqual([]);
    }
  });

  it.skipIf(!!why)('emptyImage: the config passes; the manifest breaks only the schema-only minItems on layers', async () => {
    const e = emptyImage(PLATFORM);
    expect(schemas!.validate('config', await json(e.rawConfig()))).toEqual([]);
    const v = schemas!.validate('manifest', await json(e.rawManifest()));
    expect(v.map((x) => [x.field, x.keyword])).toEqual([['manifest.layers', 'minItems']]);
  });

  it.skipIf(!!why)('an index over them', async () => {
    const idx = { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [{ mediaType: await img.mediaType(), digest: await img.digest(), size: await img.size(), platform: PLATFORM }] };
    expect(() => validateIndex(idx)).not.toThrow();
    expect(schemas!.validate('index', idx)).toEqual([]);
  });
});

describe('validateImage catches incoherent images', () => {
  const good = appendLayers(emptyImage(PLATFORM), { layer: metaLayer(1) }, { layer: metaLayer(2) });
  /** An Image over hand-edited manifest/config JSON (layers from `good`). */
  async function edited(editManifest: (m: any) => void, editConfig: (c: any) => void = () => undefined, mediaType?: MediaType): Promise<Image> {
    const cfg = await json(good.rawConfig());
    editConfig(cfg);
    const rawConfig = Buffer.from(JSON.stringify(cfg));
    const m = await json(good.rawManifest());
    m.config.digest = sha256(rawConfig);
    m.config.size = rawConfig.length;
    editManifest(m);
    const raw = Buffer.from(JSON.stringify(m));
    return {
      ...good,
      mediaType: async () => mediaType ?? m.mediaType ?? MediaTypes.OciManifest,
      digest: async () => sha256(raw),
      size: async () => raw.length,
      rawManifest: async () => raw,
      manifest: async () => m,
      configName: async () => m.config.digest,
      rawConfig: async () => rawConfig,
      config: async () => cfg,
    };
  }
  const cases: { name: string; img: () => Promise<Image>; code: string; msg: RegExp }[] = [
    { name: 'Docker layer in an OCI manifest', img: () => edited((m) => (m.layers[1].mediaType = MediaTypes.DockerLayer)), code: 'INVALID_MANIFEST', msg: /manifest\.layers\[1\]\.mediaType: .* in an OCI manifest/ },
    { name: 'OCI layer in a Docker manifest', img: () => edited((m) => { m.mediaType = MediaTypes.DockerManifest; m.config.mediaType = MediaTypes.DockerConfig; m.layers[0].mediaType = MediaTypes.DockerLayer; }), code: 'INVALID_MANIFEST', msg: /manifest\.layers\[1\]\.mediaType: .* in a Docker manifest/ },
    { name: 'Docker config in an OCI manifest', img: () => edited((m) => (m.config.mediaType = MediaTypes.DockerConfig)), code: 'INVALID_MANIFEST', msg: /manifest\.config\.mediaType: .* in an OCI manifest/ },
    { name: 'empty config without artifactType', img: () => edited((m) => (m.config.mediaType = MediaTypes.OciEmpty)), code: 'INVALID_MANIFEST', msg: /manifest\.artifactType: is required/ },
    { name: 'mediaType() disagrees with the manifest', img: () => edited(() => undefined, undefined, MediaTypes.DockerManifest), code: 'INVALID_MANIFEST', msg: /does not match mediaType\(\)/ },
    { name: 'missing diff id', img: () => edited(() => undefined, (c) => c.rootfs.diff_ids.pop()), code: 'INVALID_CONFIG', msg: /config\.rootfs\.diff_ids: has 1 entries but the manifest has 2 layers/ },
    { name: 'history out of step with the layers', img: () => edited(() => undefined, (c) => c.history.push({ created_by: 'extra' })), code: 'INVALID_CONFIG', msg: /config\.history: has 3 non-empty entries but the manifest has 2 layers/ },
    { name: 'a layer whose diff id differs from the config', img: () => edited(() => undefined, (c) => c.rootfs.diff_ids.reverse()), code: 'DIGEST_MISMATCH', msg: /layers\(\)\[0\]\.diffId\(\) is sha256:\w+ but config\.rootfs\.diff_ids\[0\] is/ },
    { name: 'a layer whose size differs from the manifest', img: () => edited((m) => (m.layers[1].size = 5)), code: 'SIZE_MISMATCH', msg: /layers\(\)\[1\]\.size\(\) is 20 but manifest\.layers\[1\]\.size is 5/ },
    { name: 'digest() that is not the manifest hash', img: async () => ({ ...(await edited(() => undefined)), digest: async () => D1 }), code: 'DIGEST_MISMATCH', msg: /digest\(\) is sha256:\w+ but the manifest hashes to/ },
    { name: 'config bytes that do not match the descriptor', img: async () => ({ ...(await edited(() => undefined)), rawConfig: async () => Buffer.from(' '.repeat(JSON.stringify(await json(good.rawConfig())).length)) }), code: 'DIGEST_MISMATCH', msg: /config hashes to sha256:\w+ but manifest\.config\.digest is/ },
    { name: 'invalid config field', img: () => edited(() => undefined, (c) => (c.created = 'now')), code: 'INVALID_CONFIG', msg: /config\.created: invalid RFC 3339 date-time "now"/ },
  ];
  it.each(cases)('$name', async (c) => {
    const e = await validateImage(await c.img()).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(ContentError);
    expect((e as ContentError).code).toBe(c.code);
    expect((e as ContentError).message).toMatch(c.msg);
    expect((e as ContentError).message).toMatch(/^image sha256:[0-9a-f]{64}: /);
  });

  it('accepts the unedited image through the same path', async () => {
    await validateImage(await edited(() => undefined));
  });

  it('accepts an artifact (empty config with artifactType) without looking for diff ids', async () => {
    const art = await edited((m) => {
      m.config = { mediaType: MediaTypes.OciEmpty, digest: sha256('{}'), size: 2 };
      m.artifactType = 'application/vnd.example.thing';
    });
    await validateImage({ ...art, rawConfig: async () => Buffer.from('{}') });
  });
});
