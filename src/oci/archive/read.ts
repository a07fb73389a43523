import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { ContentStore } from '../content/content-store.js';
import type { FileContentStore } from '../content/file-store.js';
import type { ImageConfig } from '../config.js';
import type { Descriptor } from '../descriptor.js';
import { DigestingStream, isDigest, sha256, type Digest } from '../digest.js';
import type { ImageManifest, IndexManifest } from '../manifest.js';
import { isImageManifest, MediaTypes, type Compression, type MediaType } from '../media-types.js';
import { formatReference, parseReference } from '../reference.js';
import { decompressStream, detectCompression, readTar } from '../tar/index.js';
import { ContentError } from '../../util/errors.js';
import { readAll, drain } from '../../util/streams.js';
import { copyGraph, MAX_MANIFEST_BYTES, walkGraph } from '../layout/graph.js';
import { entriesOf, parseIndexJson, readLayout, type LayoutEntry } from '../layout/layout.js';
import type { DockerArchiveManifestEntry } from './write.js';

/** What an archive or layout held, after its blobs were copied into the destination store. */
export interface ReadArchiveResult {
  /** `oci-layout` (directory), `oci-archive`, `docker-archive` (Docker 25+ layout), `docker-archive-legacy` (classic `<id>/layer.tar`). */
  readonly format: 'oci-layout' | 'oci-archive' | 'docker-archive' | 'docker-archive-legacy';
  /** The images, in archive order, with the full reference names they carry (maybe none). */
  readonly images: LayoutEntry[];
}

/** Metadata members are read into memory (bounded); everything else is streamed into the store. */
const MAX_META_BYTES = 16 << 20;

/**
 * Reads an archive file or layout directory at `path` into `dst`: an OCI layout directory, an
 * OCI archive (tar of a layout), a docker-archive as Docker 25+ writes it (layout + manifest.json),
 * or a classic docker-archive (`<id>/layer.tar`, `<hex>.json`, manifest.json) as skopeo and
 * older Docker write it. The outer tar may be gzip-compressed.
 */
export async function readArchivePath(path: string, dst: ContentStore): Promise<ReadArchiveResult> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new ContentError('NOT_FOUND', `archive ${path} not found`, { cause: e });
  }
  if (st.isDirectory()) return readLayoutDir(path, dst);
  const head = Buffer.alloc(4);
  const fh = await open(path, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const c = sniffCompression(head);
  const file = createReadStream(path);
  try {
    if (c === 'none') return await readArchive(file, dst, path);
    const d = decompressStream(c);
    file.on('error', (e) => d.destroy(e));
    return await readArchive(file.pipe(d), dst, path);
  } catch (e) {
    file.destroy();
    throw new ContentError(e instanceof ContentError ? e.code : 'INVALID_ARCHIVE', `loading ${path}`, { cause: e });
  }
}

/**
 * Like {@link readArchivePath} for a stream (e.g. stdin): a docker-archive or OCI archive tar,
 * plain, gzip or zstd. The stream is consumed to its end.
 */
export async function readArchiveStream(input: Readable, dst: ContentStore, what = 'archive'): Promise<ReadArchiveResult> {
  const { compression, stream } = await detectCompression(input);
  if (compression === 'none') return readArchive(stream, dst, what);
  const d = decompressStream(compression);
  stream.on('error', (e) => d.destroy(e));
  return readArchive(stream.pipe(d), dst, what);
}

/** Copies every image of an OCI layout directory into `dst`. */
export async function readLayoutDir(dir: string, dst: ContentStore): Promise<ReadArchiveResult> {
  const layout = await readLayout(dir);
  const seen = new Set<string>();
  for (const e of layout.entries) await copyGraph(layout.content, dst, e.descriptor, { seen });
  return { format: 'oci-layout', images: layout.entries };
}

/** The compression of a stream that starts with `head` (gzip and zstd magic numbers). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

type Member = { kind: 'blob'; digest: Digest; size: number } | { kind: 'link'; target: string };

/**
 * Reads an (uncompressed) archive stream into `dst`, one member at a time. Every regular file
 * that is not metadata is streamed into the store as it arrives (`blobs/sha256/<hex>` members
 * are verified against their names). On any failure, blobs this call added are deleted again;
 * on success, added blobs that no loaded image refers to are deleted too.
 */
export async function readArchive(input: Readable, dst: ContentStore, what = 'archive'): Promise<ReadArchiveResult> {
  const members = new Map<string, Member>();
  const meta = new Map<string, Buffer>();
  const added = new Set<Digest>();
  try {
    // === one pass over the outer tar
    for await (const { entry, body } of readTar(input)) {
      const path = normalise(entry.path);
      if (entry.type === 'symlink' || entry.type === 'hardlink') {
        const target = entry.type === 'symlink' ? posix.join(posix.dirname(path), entry.linkname ?? '') : normalise(entry.linkname ?? '');
        members.set(path, { kind: 'link', target: normalise(target) });
        await drain(body);
        continue;
      }
      if (entry.type !== 'file') {
        await drain(body);
        continue;
      }
      if (isMetadata(path) && entry.size <= MAX_META_BYTES) {
        meta.set(path, await readAll(body, MAX_META_BYTES, `${path} in ${what}`));
        continue;
      }
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path);
      const expected = m ? (`sha256:${m[1]}` as Digest) : undefined;
      const { descriptor: desc, created } = await putTracked(dst, body, expected ? { digest: expected, size: entry.size } : { size: entry.size });
      if (created) added.add(desc.digest);
      members.set(path, { kind: 'blob', digest: desc.digest, size: desc.size });
    }

    // === interpret what was read
    const result = meta.has('index.json')
      ? await fromIndexJson(dst, members, meta, added, what)
      : meta.has('manifest.json')
        ? await fromLegacyManifest(dst, members, meta, added, what)
        : undefined;
    if (!result) throw new ContentError('INVALID_ARCHIVE', `${what}: neither index.json nor manifest.json found`);

    // === drop blobs this call added but nothing loaded refers to (stray files)
    const reachable = new Set<string>();
    for (const e of result.images) await walkGraph(dst, e.descriptor, () => {}, { seen: reachable });
    for (const d of added) if (!reachable.has(d)) await dst.delete(d);
    return result;
  } catch (e) {
    input.destroy();
    for (const d of added) await dst.delete(d).catch(() => {});
    throw e;
  }
}

/** `put`, telling whether the blob is new (FileContentStore knows; otherwise ask `has` first when we can). */
async function putTracked(dst: ContentStore, data: Readable | Buffer, expected: Partial<Descriptor>): Promise<{ descriptor: Descriptor; created: boolean }> {
  const rep = (dst as { putReporting?: FileContentStore['putReporting'] }).putReporting;
  if (rep) return rep.call(dst, data, expected);
  const had = expected.digest ? await dst.has(expected.digest) : true;
  return { descriptor: await dst.put(data, expected), created: !had };
}

function normalise(p: string): string {
  const n = posix.normalize(p.replace(/^\.?\/+/, '')).replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

function isMetadata(path: string): boolean {
  if (path.startsWith('blobs/')) return false;
  const base = posix.basename(path);
  return path === 'index.json' || path === 'manifest.json' || path === 'repositories' || path === 'oci-layout' || base === 'json' || base === 'VERSION' || base.endsWith('.json');
}

function resolveMember(members: Map<string, Member>, path: string, what: string): { digest: Digest; size: number } {
  let p = normalise(path);
  for (let i = 0; i < 16; i++) {
    const m = members.get(p);
    if (!m) break;
    if (m.kind === 'blob') return m;
    p = m.target;
  }
  throw new ContentError('INVALID_ARCHIVE', `${what}: member ${path} is missing`);
}

/** Parses a metadata member that must hold a JSON object or array (never null or a scalar). */
function parseJson<T extends object>(b: Buffer, where: string): T {
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch (e) {
    throw new ContentError('INVALID_ARCHIVE', `parsing ${where}`, { cause: e });
  }
  if (typeof v !== 'object' || v === null) throw new ContentError('INVALID_ARCHIVE', `${where}: not a JSON object or array`);
  return v as T;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function normaliseNames(tags: unknown): string[] {
  const out: string[] = [];
  for (const t of Array.isArray(tags) ? tags : []) {
    if (typeof t !== 'string') continue;
    try {
      const n = formatReference(parseReference(t));
      if (!out.includes(n)) out.push(n);
    } catch {
      /* ignore malformed tags, like docker load */
    }
  }
  return out;
}

/** OCI layout in a tar (optionally with docker's manifest.json alongside: Docker 25+). */
async function fromIndexJson(
  dst: ContentStore,
  members: Map<string, Member>,
  meta: Map<string, Buffer>,
  _added: Set<Digest>,
  what: string,
): Promise<ReadArchiveResult> {
  const layoutFile = meta.get('oci-layout');
  if (layoutFile) {
    const v = parseJson<{ imageLayoutVersion?: unknown }>(layoutFile, `oci-layout in ${what}`);
    if (typeof v.imageLayoutVersion !== 'string' || !v.imageLayoutVersion.startsWith('1.')) {
      throw new ContentError('INVALID_ARCHIVE', `${what}: unsupported imageLayoutVersion ${JSON.stringify(v.imageLayoutVersion)}`);
    }
  }
  const index: IndexManifest = parseIndexJson(meta.get('index.json')!.toString('utf8'), `index.json in ${what}`);
  const entries = entriesOf(index);
  // Every blob must be present and verified (blob members were verified against their names).
  for (const e of entries) {
    await walkGraph(dst, e.descriptor, () => {}, {
      onMissing: (d, parent) => {
        throw new ContentError('INVALID_ARCHIVE', `${what}: blob ${d.digest}${parent ? ` referenced by ${parent.digest}` : ''} is missing`);
      },
    });
  }
  // docker save (25+) lists RepoTags in manifest.json too; fold them in by config digest.
  const dm = meta.get('manifest.json');
  if (dm) {
    const list = parseJson<DockerArchiveManifestEntry[]>(dm, `manifest.json in ${what}`);
    for (const item of Array.isArray(list) ? list : []) {
      if (!isObject(item)) continue;
      const names = normaliseNames(item.RepoTags);
      if (!names.length || typeof item.Config !== 'string') continue;
      const cfg = members.get(normalise(item.Config));
      if (cfg?.kind !== 'blob') continue;
      const known = new Set(entries.flatMap((e) => e.names));
      const missing = names.filter((n) => !known.has(n));
      if (!missing.length) continue;
      for (const e of entries) {
        if (!isImageManifest(e.descriptor.mediaType)) continue;
        const m = parseJson<ImageManifest>(await dst.read(e.descriptor.digest, MAX_MANIFEST_BYTES), `manifest ${e.descriptor.digest}`);
        if (isObject(m) && isObject(m.config) && m.config.digest === cfg.digest) {
          e.names.push(...missing);
          break;
        }
      }
    }
    return { format: 'docker-archive', images: entries };
  }
  return { format: 'oci-archive', images: entries };
}

/** Classic docker-archive: manifest.json with `<id>/layer.tar` (or any paths) and `<hex>.json` configs. */
async function fromLegacyManifest(
  dst: ContentStore,
  members: Map<string, Member>,
  meta: Map<string, Buffer>,
  added: Set<Digest>,
  what: string,
): Promise<ReadArchiveResult> {
  const list = parseJson<DockerArchiveManifestEntry[]>(meta.get('manifest.json')!, `manifest.json in ${what}`);
  if (!Array.isArray(list)) throw new ContentError('INVALID_ARCHIVE', `${what}: manifest.json is not an array`);
  const images: LayoutEntry[] = [];
  for (const item of list) {
    if (!isObject(item) || typeof item.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) throw new ContentError('INVALID_ARCHIVE', `${what}: malformed manifest.json entry ${JSON.stringify(item)}`);
    // === config
    const cfgPath = normalise(item.Config);
    let cfgBytes = meta.get(cfgPath);
    if (!cfgBytes) {
      const b = resolveMember(members, cfgPath, what);
      cfgBytes = await dst.read(b.digest, MAX_META_BYTES);
    }
    const config = parseJson<ImageConfig>(cfgBytes, `${cfgPath} in ${what}`);
    if (!isObject(config)) throw new ContentError('INVALID_CONFIG', `${what}: ${cfgPath} is not a JSON object`);
    const diffIds: unknown = isObject(config.rootfs) ? (config.rootfs.diff_ids ?? []) : [];
    if (!Array.isArray(diffIds) || diffIds.length !== item.Layers.length) {
      throw new ContentError('INVALID_ARCHIVE', `${what}: ${cfgPath} lists ${Array.isArray(diffIds) ? diffIds.length : 0} diff_ids but manifest.json lists ${item.Layers.length} layers`);
    }
    const { descriptor: cfgDesc, created } = await putTracked(dst, cfgBytes, { mediaType: MediaTypes.DockerConfig, digest: sha256(cfgBytes), size: cfgBytes.length });
    if (created) added.add(cfgDesc.digest);

    // === layers: stored as they are in the archive; media type from their compression
    const layers: { c: Compression; digest: Digest; size: number }[] = [];
    let anyZstd = false;
    for (let i = 0; i < item.Layers.length; i++) {
      const b = resolveMember(members, item.Layers[i]!, what);
      const c = await blobCompression(dst, b.digest);
      anyZstd ||= c === 'zstd';
      const diffId = diffIds[i]!;
      if (!isDigest(diffId)) throw new ContentError('INVALID_CONFIG', `${what}: invalid diff_id ${JSON.stringify(diffId)} in ${cfgPath}`);
      await verifyDiffId(dst, b, c, diffId, `${what}: layer ${item.Layers[i]}`);
      layers.push({ c, digest: b.digest, size: b.size });
    }
    const flavour: 'oci' | 'docker' = anyZstd ? 'oci' : 'docker';
    const layerDescs: Descriptor[] = layers.map((l) => ({ mediaType: layerType(flavour, l.c), digest: l.digest, size: l.size }));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: flavour === 'docker' ? MediaTypes.DockerManifest : MediaTypes.OciManifest,
      config: { mediaType: flavour === 'docker' ? MediaTypes.DockerConfig : MediaTypes.OciConfig, digest: cfgDesc.digest, size: cfgDesc.size },
      layers: layerDescs,
    };
    const raw = Buffer.from(JSON.stringify(manifest, null, 3));
    const { descriptor: mdesc, created: mcreated } = await putTracked(dst, raw, { mediaType: manifest.mediaType!, digest: sha256(raw), size: raw.length });
    if (mcreated) added.add(mdesc.digest);
    const descriptor: Descriptor = { mediaType: mdesc.mediaType, digest: mdesc.digest, size: mdesc.size };
    images.push({ descriptor, names: normaliseNames(item.RepoTags) });
  }
  return { format: 'docker-archive-legacy', images };
}

function layerType(flavour: 'oci' | 'docker', c: Compression): MediaType {
  if (flavour === 'docker') return c === 'none' ? MediaTypes.DockerUncompressedLayer : MediaTypes.DockerLayer;
  return c === 'gzip' ? MediaTypes.OciLayerGzip : c === 'zstd' ? MediaTypes.OciLayerZstd : MediaTypes.OciLayer;
}

async function blobCompression(dst: ContentStore, d: Digest): Promise<Compression> {
  const fh = await open(dst.path(d), 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    return sniffCompression(head);
  } finally {
    await fh.close();
  }
}

async function verifyDiffId(dst: ContentStore, b: { digest: Digest; size: number }, c: Compression, diffId: Digest, what: string): Promise<void> {
  if (c === 'none') {
    if (b.digest !== diffId) throw new ContentError('DIGEST_MISMATCH', `${what}: content has digest ${b.digest}, config says ${diffId}`);
    return;
  }
  const verify = new DigestingStream({ digest: diffId, what: `${what}: uncompressed content` });
  await pipeline(await dst.open(b), decompressStream(c), verify, new Writable({ write: (_c, _e, cb) => cb() }));
}
