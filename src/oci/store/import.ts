import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { ImageConfig } from '../config.js';
import type { Descriptor } from '../descriptor.js';
import { sha256 } from '../digest.js';
import type { ImageManifest } from '../manifest.js';
import { MediaTypes } from '../media-types.js';
import { hostPlatform, type Platform } from '../platform.js';
import { decompressStream, tarDirectory, writeLayer } from '../tar/index.js';
import { sniffCompression } from '../archive/read.js';
import { ContentError } from '../../util/errors.js';
import { applyChanges } from './config-changes.js';
import type { ImageStore } from './image-store.js';

/** Options of {@link importRootfs}. */
export interface ImportOptions {
  /** Dockerfile-syntax config changes (see applyChanges). */
  readonly changes?: readonly string[];
  readonly platform?: Platform;
  /** History comment (docker: "Imported from <source>"). */
  readonly message?: string;
  /** Creation time (default: now; SOURCE_DATE_EPOCH-style reproducibility when given). */
  readonly created?: Date;
}

/**
 * Makes a single-layer image from a root filesystem, like `docker import`: `source` is a
 * directory (packed with tarDirectory, deterministic) or a tar file (plain, gzip or zstd; its
 * entries are kept as they are). The layer is gzip-compressed into the store in one streaming
 * pass; config and OCI manifest follow. Returns the manifest descriptor; nothing is tagged.
 */
export async function importRootfs(store: ImageStore, source: string, opts: ImportOptions = {}): Promise<Descriptor> {
  // Changes are checked before anything is written.
  const containerConfig = applyChanges({}, opts.changes ?? []);
  let st;
  try {
    st = await stat(source);
  } catch (e) {
    throw new ContentError('NOT_FOUND', `rootfs ${source} not found`, { cause: e });
  }
  const tar = st.isDirectory() ? tarDirectory(source) : await openTar(source);
  let layer;
  try {
    layer = await writeLayer(tar, store.content, { compression: 'gzip', flavour: 'oci' });
  } catch (e) {
    tar.destroy();
    throw e instanceof ContentError ? e : new ContentError('IO', `importing ${source}`, { cause: e });
  }
  const created = (opts.created ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const platform = opts.platform ?? hostPlatform();
  const config: ImageConfig = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: 'tsbuild import', comment: opts.message ?? `Imported from ${st.isDirectory() ? 'directory' : 'tar'}` }],
  };
  const rawConfig = Buffer.from(JSON.stringify(config));
  const cfgDesc = await store.content.put(rawConfig, { mediaType: MediaTypes.OciConfig, digest: sha256(rawConfig), size: rawConfig.length });
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    config: { mediaType: MediaTypes.OciConfig, digest: cfgDesc.digest, size: cfgDesc.size },
    layers: [{ mediaType: layer.descriptor.mediaType, digest: layer.descriptor.digest, size: layer.descriptor.size }],
  };
  const raw = Buffer.from(JSON.stringify(manifest));
  const d = await store.content.put(raw, { mediaType: MediaTypes.OciManifest, digest: sha256(raw), size: raw.length });
  return { mediaType: MediaTypes.OciManifest, digest: d.digest, size: d.size };
}

async function openTar(path: string): Promise<Readable> {
  const head = Buffer.alloc(4);
  const fh = await open(path, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const c = sniffCompression(head);
  const file = createReadStream(path);
  if (c === 'none') return file;
  const d = decompressStream(c);
  file.on('error', (e) => d.destroy(e));
  return file.pipe(d);
}

