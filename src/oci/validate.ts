/**
 * Hand-written validators for the OCI wire types (image-spec v1.1 manifest.md, image-index.md,
 * config.md, descriptor.md) and Docker schema 2. Each throws a ContentError whose message names
 * the exact field, e.g. `manifest.layers[2].digest: invalid digest "sha256:xyz"`. They accept
 * unknown fields (the spec says consumers MUST ignore them) and return the input typed.
 * {@link validateImage} checks the invariants between an image's manifest, config and layers.
 */
import { ContentError, type ContentErrorCode } from '../util/errors.js';
import { parseJsonBytes } from '../util/json.js';
import { drain, pipeInto } from '../util/streams.js';
import type { ContainerConfig, ImageConfig } from './config.js';
import type { Descriptor } from './descriptor.js';
import { DigestingStream, isDigest, parseDigest, sha256, type Digest } from './digest.js';
import type { Image, Layer } from './image.js';
import type { ImageManifest, IndexManifest } from './manifest.js';
import { MediaTypes, isConfig, isImageManifest, isIndex } from './media-types.js';

/** Largest manifest or index tsbuild accepts (distribution's registry limit is 4 MiB). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
/** Largest image config tsbuild accepts. */
export const MAX_CONFIG_SIZE = 8 * 1024 * 1024;
/** Most layers an image may have (overlayfs cannot stack more than ~500 lower dirs anyway). */
export const MAX_LAYERS = 1000;
/** Most entries an index may list. */
export const MAX_INDEX_ENTRIES = 10_000;

// RFC 6838 section 4.2 restricted-name, as image-spec descriptor.md requires for mediaType.
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
// RFC 3339 date-time (the JSON schema "date-time" format), e.g. 2024-01-02T03:04:05.123Z.
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type Obj = Record<string, unknown>;

/** `path.key`, or `path["key"]` when the key is not identifier-like (`config["os.version"]`). */
function at(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

class Checker {
  constructor(readonly code: ContentErrorCode) {}

  fail(path: string, msg: string, cause?: unknown): never {
    throw new ContentError(this.code, `${path}: ${msg}`, cause === undefined ? undefined : { cause });
  }

  object(v: unknown, path: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, `must be an object, got ${kind(v)}`);
    return v as Obj;
  }

  string(o: Obj, key: string, path: string, required = false): string | undefined {
    const v = o[key];
    if (v === undefined) {
      if (required) this.fail(at(path, key), 'is required');
      return undefined;
    }
    if (typeof v !== 'string') this.fail(at(path, key), `must be a string, got ${kind(v)}`);
    return v;
  }

  boolean(o: Obj, key: string, path: string): void {
    const v = o[key];
    if (v !== undefined && typeof v !== 'boolean') this.fail(at(path, key), `must be a boolean, got ${kind(v)}`);
  }

  stringArray(o: Obj, key: string, path: string, opts: { nullable?: boolean; required?: boolean } = {}): void {
    const v = o[key];
    if (v === undefined) {
      if (opts.required) this.fail(at(path, key), 'is required');
      return;
    }
    if (v === null && opts.nullable) return;
    if (!Array.isArray(v)) this.fail(at(path, key), `must be an array of strings, got ${kind(v)}`);
    v.forEach((item, i) => {
      if (typeof item !== 'string') this.fail(`${at(path, key)}[${i}]`, `must be a string, got ${kind(item)}`);
    });
  }

  stringMap(o: Obj, key: string, path: string, opts: { nullable?: boolean } = {}): void {
    const v = o[key];
    if (v === undefined || (v === null && opts.nullable)) return;
    const m = this.object(v, at(path, key));
    for (const [k, item] of Object.entries(m)) {
      if (typeof item !== 'string') this.fail(`${at(at(path, key), k)}`, `must be a string, got ${kind(item)}`);
    }
  }

  objectMap(o: Obj, key: string, path: string, opts: { nullable?: boolean } = {}): void {
    const v = o[key];
    if (v === undefined || (v === null && opts.nullable)) return;
    const m = this.object(v, at(path, key));
    for (const [k, item] of Object.entries(m)) this.object(item, `${at(at(path, key), k)}`);
  }

  mediaType(o: Obj, key: string, path: string, required: boolean): string | undefined {
    const v = this.string(o, key, path, required);
    if (v !== undefined && !MEDIA_TYPE_RE.test(v)) this.fail(at(path, key), `invalid media type ${JSON.stringify(v)}`);
    return v;
  }

  digest(o: Obj, key: string, path: string): Digest {
    const v = this.string(o, key, path, true) as string;
    try {
      return parseDigest(v);
    } catch (e) {
      return this.fail(at(path, key), `invalid digest ${JSON.stringify(v)}`, e);
    }
  }

  size(o: Obj, key: string, path: string, max?: number): number {
    const v = o[key];
    if (v === undefined) this.fail(at(path, key), 'is required');
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(at(path, key), `must be an integer, got ${kind(v)}`);
    if (v < 0) this.fail(at(path, key), `must not be negative, got ${v}`);
    if (!Number.isSafeInteger(v)) this.fail(at(path, key), `${v} is too large`);
    if (max !== undefined && v > max) this.fail(at(path, key), `${v} bytes is more than the limit of ${max}`);
    return v;
  }

  dateTime(o: Obj, key: string, path: string): void {
    const v = this.string(o, key, path);
    if (v !== undefined && (!DATE_TIME_RE.test(v) || Number.isNaN(Date.parse(v)))) {
      this.fail(at(path, key), `invalid RFC 3339 date-time ${JSON.stringify(v)}`);
    }
  }

  array(o: Obj, key: string, path: string, opts: { required?: boolean; max?: number } = {}): unknown[] | undefined {
    const v = o[key];
    if (v === undefined) {
      if (opts.required) this.fail(at(path, key), 'is required');
      return undefined;
    }
    if (!Array.isArray(v)) this.fail(at(path, key), `must be an array, got ${kind(v)}`);
    if (opts.max !== undefined && v.length > opts.max) this.fail(at(path, key), `${v.length} entries is more than the limit of ${opts.max}`);
    return v;
  }

  schemaVersion(o: Obj, path: string): void {
    const v = o.schemaVersion;
    if (v === undefined) this.fail(`${path}.schemaVersion`, 'is required');
    if (v !== 2) this.fail(`${path}.schemaVersion`, `must be 2, got ${JSON.stringify(v)}`);
  }

  platform(v: unknown, path: string): void {
    const p = this.object(v, path);
    this.string(p, 'architecture', path, true);
    this.string(p, 'os', path, true);
    this.string(p, 'os.version', path);
    this.stringArray(p, 'os.features', path);
    this.string(p, 'variant', path);
    this.stringArray(p, 'features', path);
  }

  descriptor(v: unknown, path: string, maxSize?: number): Descriptor {
    const d = this.object(v, path);
    this.mediaType(d, 'mediaType', path, true);
    const digest = this.digest(d, 'digest', path);
    const size = this.size(d, 'size', path, maxSize);
    const urls = this.array(d, 'urls', path);
    urls?.forEach((u, i) => {
      if (typeof u !== 'string' || !isUrl(u)) this.fail(`${path}.urls[${i}]`, `invalid url ${JSON.stringify(u)}`);
    });
    this.stringMap(d, 'annotations', path);
    const data = this.string(d, 'data', path);
    if (data !== undefined) {
      if (!BASE64_RE.test(data)) this.fail(`${path}.data`, 'is not valid base64');
      const bytes = Buffer.from(data, 'base64');
      if (bytes.length !== size) this.fail(`${path}.data`, `holds ${bytes.length} bytes but size is ${size}`);
      if (sha256(bytes) !== digest && digest.startsWith('sha256:')) this.fail(`${path}.data`, `does not match digest ${digest}`);
    }
    if (d.platform !== undefined) this.platform(d.platform, `${path}.platform`);
    this.mediaType(d, 'artifactType', path, false);
    return d as unknown as Descriptor;
  }
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function isUrl(s: string): boolean {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a descriptor (image-spec descriptor.md): mediaType (RFC 6838), digest (a supported
 * algorithm), size (non-negative safe integer), urls, annotations, embedded data (matches size
 * and digest), platform, artifactType. `where` prefixes messages (e.g. `manifest.config`).
 * Throws ContentError INVALID_DESCRIPTOR.
 */
export function validateDescriptor(json: unknown, where: string): Descriptor {
  return new Checker('INVALID_DESCRIPTOR').descriptor(json, where);
}

/**
 * Validates an image manifest, OCI or Docker schema 2: schemaVersion 2, a mediaType (when
 * present) that is an image manifest type, the config descriptor (at most MAX_CONFIG_SIZE),
 * layers (at most MAX_LAYERS), subject and annotations. Media-type coherence between the
 * manifest, config and layers is checked by {@link validateImage}, not here, so foreign but
 * well-formed manifests still parse. Throws ContentError INVALID_MANIFEST naming the field.
 */
export function validateManifest(json: unknown, where = 'manifest'): ImageManifest {
  const c = new Checker('INVALID_MANIFEST');
  const m = c.object(json, where);
  c.schemaVersion(m, where);
  const mt = c.mediaType(m, 'mediaType', where, false);
  if (mt !== undefined && !isImageManifest(mt)) {
    c.fail(`${where}.mediaType`, `${JSON.stringify(mt)} is not an image manifest media type`);
  }
  c.mediaType(m, 'artifactType', where, false);
  if (m.config === undefined) c.fail(`${where}.config`, 'is required');
  c.descriptor(m.config, `${where}.config`, MAX_CONFIG_SIZE);
  const layers = c.array(m, 'layers', where, { required: true, max: MAX_LAYERS }) as unknown[];
  layers.forEach((l, i) => c.descriptor(l, `${where}.layers[${i}]`));
  if (m.subject !== undefined) c.descriptor(m.subject, `${where}.subject`, MAX_MANIFEST_SIZE);
  c.stringMap(m, 'annotations', where);
  return m as unknown as ImageManifest;
}

/**
 * Validates an image index or Docker manifest list: schemaVersion 2, a mediaType (when present)
 * that is an index type, manifests (each a descriptor of at most MAX_MANIFEST_SIZE bytes, at most
 * MAX_INDEX_ENTRIES), subject and annotations. Throws ContentError INVALID_MANIFEST naming the field.
 */
export function validateIndex(json: unknown, where = 'index'): IndexManifest {
  const c = new Checker('INVALID_MANIFEST');
  const m = c.object(json, where);
  c.schemaVersion(m, where);
  const mt = c.mediaType(m, 'mediaType', where, false);
  if (mt !== undefined && !isIndex(mt)) c.fail(`${where}.mediaType`, `${JSON.stringify(mt)} is not an index media type`);
  c.mediaType(m, 'artifactType', where, false);
  const manifests = c.array(m, 'manifests', where, { required: true, max: MAX_INDEX_ENTRIES }) as unknown[];
  manifests.forEach((d, i) => c.descriptor(d, `${where}.manifests[${i}]`, MAX_MANIFEST_SIZE));
  if (m.subject !== undefined) c.descriptor(m.subject, `${where}.subject`, MAX_MANIFEST_SIZE);
  c.stringMap(m, 'annotations', where);
  return m as unknown as IndexManifest;
}

/**
 * Validates an image config (image-spec config.md plus Docker's fields): architecture, os and
 * rootfs (type "layers", diff_ids digests, at most MAX_LAYERS) are required; created and
 * history[].created are RFC 3339; the `config` member's fields have their spec types.
 * Throws ContentError INVALID_CONFIG naming the field.
 */
export function validateConfig(json: unknown, where = 'config'): ImageConfig {
  const c = new Checker('INVALID_CONFIG');
  const o = c.object(json, where);
  c.dateTime(o, 'created', where);
  c.string(o, 'author', where);
  c.string(o, 'architecture', where, true);
  c.string(o, 'os', where, true);
  c.string(o, 'os.version', where);
  c.stringArray(o, 'os.features', where);
  c.string(o, 'variant', where);
  if (o.config !== undefined && o.config !== null) validateContainerConfig(c, o.config, `${where}.config`);
  if (o.rootfs === undefined) c.fail(`${where}.rootfs`, 'is required');
  const rootfs = c.object(o.rootfs, `${where}.rootfs`);
  if (rootfs.type !== 'layers') c.fail(`${where}.rootfs.type`, `must be "layers", got ${kind(rootfs.type)}`);
  const diffIds = c.array(rootfs, 'diff_ids', `${where}.rootfs`, { required: true, max: MAX_LAYERS }) as unknown[];
  diffIds.forEach((d, i) => {
    if (typeof d !== 'string' || !isDigest(d)) c.fail(`${where}.rootfs.diff_ids[${i}]`, `invalid digest ${JSON.stringify(d)}`);
  });
  const history = c.array(o, 'history', where);
  history?.forEach((h, i) => {
    const p = `${where}.history[${i}]`;
    const e = c.object(h, p);
    c.dateTime(e, 'created', p);
    c.string(e, 'created_by', p);
    c.string(e, 'author', p);
    c.string(e, 'comment', p);
    c.boolean(e, 'empty_layer', p);
  });
  return o as unknown as ImageConfig;
}

function validateContainerConfig(c: Checker, v: unknown, path: string): ContainerConfig {
  const o = c.object(v, path);
  c.string(o, 'User', path);
  c.objectMap(o, 'ExposedPorts', path);
  c.stringArray(o, 'Env', path);
  c.stringArray(o, 'Entrypoint', path, { nullable: true });
  c.stringArray(o, 'Cmd', path, { nullable: true });
  c.objectMap(o, 'Volumes', path, { nullable: true });
  c.string(o, 'WorkingDir', path);
  c.stringMap(o, 'Labels', path, { nullable: true });
  c.string(o, 'StopSignal', path);
  c.boolean(o, 'ArgsEscaped', path);
  c.stringArray(o, 'OnBuild', path, { nullable: true });
  c.stringArray(o, 'Shell', path);
  if (o.Healthcheck !== undefined && o.Healthcheck !== null) {
    const hp = `${path}.Healthcheck`;
    const h = c.object(o.Healthcheck, hp);
    c.stringArray(h, 'Test', hp);
    for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) {
      const n = h[k];
      if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 0)) {
        c.fail(at(hp, k), `must be a non-negative integer, got ${kind(n)}`);
      }
    }
  }
  return o as ContainerConfig;
}

const DOCKER_LAYER_TYPES: ReadonlySet<string> = new Set([MediaTypes.DockerLayer, MediaTypes.DockerForeignLayer, MediaTypes.DockerUncompressedLayer]);

/** Options of {@link validateImage}. */
export interface ValidateImageOptions {
  /**
   * Also stream every layer: compressed bytes against digest and size, uncompressed bytes against
   * the diff id. Expensive; off by default (descriptors and config only).
   */
  readonly layerContent?: boolean;
}

/**
 * Checks the invariants of an Image (ggcr validate.Image): digest() is the sha256 of
 * rawManifest() and size() its length; the manifest and config validate; the config bytes
 * match the manifest's config descriptor and configName(); media types are coherent (an OCI
 * manifest holds no Docker types and vice versa; an image config type for images, an
 * artifactType when the config is the empty descriptor); layers() matches the manifest layers
 * one to one (digest, size, media type); there is one diff id per layer and each layer's
 * diffId() equals it; history, when present, has one non-empty entry per layer.
 * Throws ContentError (INVALID_MANIFEST, INVALID_CONFIG, DIGEST_MISMATCH, SIZE_MISMATCH) naming
 * the image and the field.
 */
export async function validateImage(img: Image, opts: ValidateImageOptions = {}): Promise<void> {
  const raw = await img.rawManifest();
  const got = sha256(raw);
  const what = `image ${got}`;
  const digest = await img.digest();
  if (digest !== got) throw new ContentError('DIGEST_MISMATCH', `${what}: digest() is ${digest} but the manifest hashes to ${got}`);
  const size = await img.size();
  if (size !== raw.byteLength) throw new ContentError('SIZE_MISMATCH', `${what}: size() is ${size} but the manifest has ${raw.byteLength} bytes`);
  if (raw.byteLength > MAX_MANIFEST_SIZE) throw new ContentError('INVALID_MANIFEST', `${what}: manifest of ${raw.byteLength} bytes is more than the limit of ${MAX_MANIFEST_SIZE}`);

  const m = within(what, () => validateManifest(parseJsonBytes(raw, 'manifest', 'INVALID_MANIFEST')));
  const mc = new Checker('INVALID_MANIFEST');
  const mt = await img.mediaType();
  if (!isImageManifest(mt)) mc.fail(`${what}: mediaType()`, `${JSON.stringify(mt)} is not an image manifest media type`);
  if ((m.mediaType ?? MediaTypes.OciManifest) !== mt) {
    mc.fail(`${what}: manifest.mediaType`, `${JSON.stringify(m.mediaType)} does not match mediaType() ${JSON.stringify(mt)}`);
  }
  const docker = mt === MediaTypes.DockerManifest;
  const cfgType = m.config.mediaType;
  if (docker && cfgType !== MediaTypes.DockerConfig) mc.fail(`${what}: manifest.config.mediaType`, `${JSON.stringify(cfgType)} in a Docker manifest`);
  if (!docker && cfgType === MediaTypes.DockerConfig) mc.fail(`${what}: manifest.config.mediaType`, `${JSON.stringify(cfgType)} in an OCI manifest`);
  if (cfgType === MediaTypes.OciEmpty && m.artifactType === undefined) {
    mc.fail(`${what}: manifest.artifactType`, 'is required when the config is the empty descriptor');
  }
  m.layers.forEach((l, i) => {
    const isDockerType = DOCKER_LAYER_TYPES.has(l.mediaType);
    if (docker && !isDockerType) mc.fail(`${what}: manifest.layers[${i}].mediaType`, `${JSON.stringify(l.mediaType)} in a Docker manifest`);
    if (!docker && isDockerType) mc.fail(`${what}: manifest.layers[${i}].mediaType`, `${JSON.stringify(l.mediaType)} in an OCI manifest`);
  });

  const configName = await img.configName();
  if (configName !== m.config.digest) {
    throw new ContentError('DIGEST_MISMATCH', `${what}: configName() is ${configName} but manifest.config.digest is ${m.config.digest}`);
  }
  const rawConfig = await img.rawConfig();
  if (rawConfig.byteLength !== m.config.size) {
    throw new ContentError('SIZE_MISMATCH', `${what}: config has ${rawConfig.byteLength} bytes but manifest.config.size is ${m.config.size}`);
  }
  const cfgDigest = sha256(rawConfig);
  if (cfgDigest !== m.config.digest) {
    throw new ContentError('DIGEST_MISMATCH', `${what}: config hashes to ${cfgDigest} but manifest.config.digest is ${m.config.digest}`);
  }
  if (!isConfig(cfgType)) return; // an artifact: its config is not an image config and has no diff ids

  const cfg = within(what, () => validateConfig(parseJsonBytes(rawConfig, 'config', 'INVALID_CONFIG')));
  const cc = new Checker('INVALID_CONFIG');
  const diffIds = cfg.rootfs.diff_ids;
  if (diffIds.length !== m.layers.length) {
    cc.fail(`${what}: config.rootfs.diff_ids`, `has ${diffIds.length} entries but the manifest has ${m.layers.length} layers`);
  }
  if (cfg.history && cfg.history.length > 0) {
    const nonEmpty = cfg.history.filter((h) => !h.empty_layer).length;
    if (nonEmpty !== m.layers.length) {
      cc.fail(`${what}: config.history`, `has ${nonEmpty} non-empty entries but the manifest has ${m.layers.length} layers`);
    }
  }

  const layers = await img.layers();
  if (layers.length !== m.layers.length) {
    mc.fail(`${what}: layers()`, `returned ${layers.length} layers but the manifest has ${m.layers.length}`);
  }
  for (const [i, l] of layers.entries()) {
    const want = m.layers[i] as Descriptor;
    const p = `${what}: layers()[${i}]`;
    const [ld, ls, lm, lid] = await Promise.all([l.digest(), l.size(), l.mediaType(), l.diffId()]);
    if (ld !== want.digest) throw new ContentError('DIGEST_MISMATCH', `${p}.digest() is ${ld} but manifest.layers[${i}].digest is ${want.digest}`);
    if (ls !== want.size) throw new ContentError('SIZE_MISMATCH', `${p}.size() is ${ls} but manifest.layers[${i}].size is ${want.size}`);
    if (lm !== want.mediaType) mc.fail(`${p}.mediaType()`, `${JSON.stringify(lm)} but manifest.layers[${i}].mediaType is ${JSON.stringify(want.mediaType)}`);
    if (lid !== diffIds[i]) throw new ContentError('DIGEST_MISMATCH', `${p}.diffId() is ${lid} but config.rootfs.diff_ids[${i}] is ${diffIds[i]}`);
    if (opts.layerContent) await checkLayerContent(l, want, lid, p);
  }
}

/** Runs `f`, prefixing the message of a ContentError it throws with `what` (same code, original as cause). */
function within<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ContentError) throw new ContentError(e.code, `${what}: ${e.message}`, { cause: e });
    throw e;
  }
}

async function checkLayerContent(l: Layer, want: Descriptor, diffId: Digest, p: string): Promise<void> {
  await drain(pipeInto(await l.compressed(), new DigestingStream({ digest: want.digest, size: want.size, what: `${p}: compressed` })));
  await drain(pipeInto(await l.uncompressed(), new DigestingStream({ digest: diffId, what: `${p}: uncompressed` })));
}
