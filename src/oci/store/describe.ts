import type { ImageConfig } from '../config.js';
import type { Descriptor } from '../descriptor.js';
import type { Digest } from '../digest.js';
import type { ImageManifest, IndexManifest } from '../manifest.js';
import { isIndex } from '../media-types.js';
import { hostPlatform, type Platform } from '../platform.js';
import { familiarName, parseReference } from '../reference.js';
import { MAX_MANIFEST_BYTES } from '../layout/graph.js';
import type { ImageRecord, ImageStore } from './image-store.js';

/** One row of `tsbuild images`. */
export interface ImageSummary {
  /** Familiar repository (`busybox`, `localhost:5000/app`), or `<none>`. */
  readonly Repository: string;
  readonly Tag: string;
  /** Full ID (sha256:…); tables show the first 12 hex characters. */
  readonly ID: Digest;
  /** Manifest (or index) digest. */
  readonly Digest: Digest;
  /** Full normalised name, '' when untagged. */
  readonly Name: string;
  /** Config `created`, when known. */
  readonly Created?: string;
  /** Sum of the (compressed) layer, config and manifest sizes of the host-platform image. */
  readonly Size: number;
}

/** The summary of one record (reads its manifest and config). */
export async function summarise(store: ImageStore, r: ImageRecord, platform: Platform = hostPlatform()): Promise<ImageSummary> {
  let repo = '<none>';
  let tag = '<none>';
  if (r.name) {
    const ref = parseReference(r.name);
    repo = familiarName({ registry: ref.registry, repository: ref.repository });
    tag = ref.tag ?? '<none>';
  }
  let created: string | undefined;
  let size = 0;
  try {
    const desc = await store.platformManifest(r.descriptor, platform, r.name || r.id);
    const m = JSON.parse((await store.content.read(desc.digest, MAX_MANIFEST_BYTES)).toString('utf8')) as ImageManifest;
    const cfg = JSON.parse((await store.content.read(m.config.digest, 8 << 20)).toString('utf8')) as ImageConfig;
    created = cfg.created;
    size = desc.size + m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
  } catch {
    /* a broken image still lists; fsck tells what is wrong */
  }
  return { Repository: repo, Tag: tag, ID: r.id, Digest: r.descriptor.digest, Name: r.name, ...(created ? { Created: created } : {}), Size: size };
}

/** `docker inspect`-shaped description of an image (plus the raw manifest and descriptor). */
export interface ImageInspect {
  Id: Digest;
  RepoTags: string[];
  RepoDigests: string[];
  Created?: string;
  Author?: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  Size: number;
  Config: ImageConfig['config'] | null;
  RootFS: { Type: string; Layers: Digest[] };
  History: NonNullable<ImageConfig['history']>;
  Descriptor: Descriptor;
  Manifest: ImageManifest;
  Index?: IndexManifest;
}

/** Describes the image of `r` (following an index to `platform`), with every name it has. */
export async function inspectImage(store: ImageStore, r: ImageRecord, platform: Platform = hostPlatform()): Promise<ImageInspect> {
  const names = (await store.recordsFor(r.id)).map((x) => x.name).filter(Boolean);
  const desc = await store.platformManifest(r.descriptor, platform, r.name || r.id);
  const manifest = JSON.parse((await store.content.read(desc.digest, MAX_MANIFEST_BYTES)).toString('utf8')) as ImageManifest;
  const cfg = JSON.parse((await store.content.read(manifest.config.digest, 8 << 20)).toString('utf8')) as ImageConfig;
  const out: ImageInspect = {
    Id: r.id,
    RepoTags: names.map((n) => familiarName(parseReference(n))),
    RepoDigests: [...new Set(names.map((n) => {
      const ref = parseReference(n);
      return `${familiarName({ registry: ref.registry, repository: ref.repository })}@${r.descriptor.digest}`;
    }))],
    ...(cfg.created ? { Created: cfg.created } : {}),
    ...(cfg.author ? { Author: cfg.author } : {}),
    Architecture: cfg.architecture,
    Os: cfg.os,
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Size: manifest.layers.reduce((a, l) => a + l.size, 0),
    Config: cfg.config ?? null,
    RootFS: { Type: cfg.rootfs?.type ?? 'layers', Layers: cfg.rootfs?.diff_ids ?? [] },
    History: cfg.history ?? [],
    Descriptor: r.descriptor,
    Manifest: manifest,
  };
  if (isIndex(r.descriptor.mediaType)) {
    out.Index = JSON.parse((await store.content.read(r.descriptor.digest, MAX_MANIFEST_BYTES)).toString('utf8')) as IndexManifest;
  }
  return out;
}

/** Docker-style human size: 1.23MB (decimal units, like `docker images`). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toPrecision(3)}${units[i]}`;
}

/** Docker-style relative time: "5 minutes ago". */
export function timeAgo(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const fmt = (n: number, u: string): string => `${n} ${u}${n === 1 ? '' : 's'} ago`;
  if (s < 60) return s < 1 ? 'Less than a second ago' : fmt(s, 'second');
  if (s < 3600) return fmt(Math.floor(s / 60), 'minute');
  if (s < 86400 * 2) return fmt(Math.floor(s / 3600), 'hour');
  if (s < 86400 * 14) return fmt(Math.floor(s / 86400), 'day');
  if (s < 86400 * 60) return fmt(Math.floor(s / (86400 * 7)), 'week');
  if (s < 86400 * 365 * 2) return fmt(Math.floor(s / (86400 * 30)), 'month');
  return fmt(Math.floor(s / (86400 * 365)), 'year');
}
