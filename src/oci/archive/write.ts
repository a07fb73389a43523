import type { Readable } from 'node:stream';
import type { ContentStore } from '../content/content-store.js';
import type { Descriptor } from '../descriptor.js';
import { digestHex } from '../digest.js';
import type { ImageManifest } from '../manifest.js';
import { isImageManifest, isIndex } from '../media-types.js';
import { hostPlatform, platformMatches, type Platform } from '../platform.js';
import { familiarName, parseReference } from '../reference.js';
import { TarWriter } from '../tar/index.js';
import { ContentError } from '../../util/errors.js';
import { childDescriptors, MAX_MANIFEST_BYTES } from '../layout/graph.js';
import { layoutIndex, OCI_LAYOUT_FILE, type LayoutWriteEntry } from '../layout/layout.js';

/** Archive formats tsbuild writes. */
export type ArchiveFormat = 'docker' | 'oci';

/** Options of {@link writeArchive}. */
export interface WriteArchiveOptions {
  /**
   * `docker` (default): what Docker 25+ `docker save` writes: an OCI layout (`oci-layout`,
   * `index.json`, `blobs/sha256/…`) plus the classic `manifest.json` and `repositories`
   * pointing at the same blob files, so both OCI and docker-archive readers accept it.
   * `oci`: a plain OCI layout in a tar (an "OCI archive").
   */
  readonly format?: ArchiveFormat;
  /** For indexes: the platform whose manifest goes into manifest.json (default: host). */
  readonly platform?: Platform;
}

/** One `manifest.json` entry (docker-archive, moby image/tarexport). */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  LayerSources?: Record<string, Descriptor>;
}

const DIR_MODE = 0o755;
const FILE_MODE = 0o644;

/**
 * Streams an archive of `entries` (roots in `src`, with the full reference names to record).
 * Every blob is read from `src` one at a time (verified while it streams); nothing is held in
 * memory but manifests and configs. The caller consumes the returned stream; a failure
 * destroys it with the error.
 */
export function writeArchive(src: ContentStore, entries: readonly LayoutWriteEntry[], opts: WriteArchiveOptions = {}): Readable {
  const w = new TarWriter({ sourceDateEpoch: 0 });
  const format = opts.format ?? 'docker';
  const produce = async (): Promise<void> => {
    const dir = (path: string): Promise<void> => w.add({ path, type: 'dir', mode: DIR_MODE, uid: 0, gid: 0, size: 0, mtime: 0 });
    const file = (path: string, size: number, body: Readable | Buffer): Promise<void> =>
      w.add({ path, type: 'file', mode: FILE_MODE, uid: 0, gid: 0, size, mtime: 0 }, body);

    // === blobs, children before parents, each once
    await dir('blobs');
    await dir('blobs/sha256');
    const seen = new Set<string>();
    const emit = async (d: Descriptor): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      for (const c of await childDescriptors(src, d)) await emit(c);
      if (!d.digest.startsWith('sha256:')) throw new ContentError('INVALID_DIGEST', `cannot archive blob ${d.digest}: only sha256 is supported`);
      await file(`blobs/sha256/${digestHex(d.digest)}`, d.size, await src.open(d));
    };
    for (const e of entries) await emit(e.descriptor);

    // === index.json (+ docker's manifest.json and repositories), oci-layout
    await file('index.json', ...text(JSON.stringify(layoutIndex(entries))));
    if (format === 'docker') {
      const { manifest, repositories } = await dockerManifest(src, entries, opts.platform ?? hostPlatform());
      await file('manifest.json', ...text(JSON.stringify(manifest)));
      await file('oci-layout', ...text(JSON.stringify(OCI_LAYOUT_FILE)));
      await file('repositories', ...text(JSON.stringify(repositories)));
    } else {
      await file('oci-layout', ...text(JSON.stringify(OCI_LAYOUT_FILE)));
    }
    await w.finish();
  };
  produce().catch((e: unknown) => w.stream.destroy(e instanceof Error ? e : new Error(String(e))));
  return w.stream;
}

function text(s: string): [number, Buffer] {
  const b = Buffer.from(s, 'utf8');
  return [b.length, b];
}

/**
 * The docker-archive `manifest.json` and `repositories` for `entries`: one manifest.json entry
 * per image (an index contributes the manifest for `platform`), RepoTags in familiar form.
 */
export async function dockerManifest(
  src: ContentStore,
  entries: readonly LayoutWriteEntry[],
  platform: Platform,
): Promise<{ manifest: DockerArchiveManifestEntry[]; repositories: Record<string, Record<string, string>> }> {
  const byManifest = new Map<string, { desc: Descriptor; tags: string[] }>();
  const repositories: Record<string, Record<string, string>> = {};
  for (const e of entries) {
    const desc = await pickManifest(src, e.descriptor, platform);
    const cur = byManifest.get(desc.digest) ?? { desc, tags: [] };
    byManifest.set(desc.digest, cur);
    for (const n of e.names ?? []) {
      const r = parseReference(n);
      if (!r.tag) continue;
      const fam = familiarName({ registry: r.registry, repository: r.repository, tag: r.tag });
      if (!cur.tags.includes(fam)) cur.tags.push(fam);
    }
  }
  const manifest: DockerArchiveManifestEntry[] = [];
  for (const { desc, tags } of byManifest.values()) {
    const m = JSON.parse((await src.read(desc.digest, MAX_MANIFEST_BYTES)).toString('utf8')) as ImageManifest;
    const layers = m.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`);
    const entry: DockerArchiveManifestEntry = { Config: `blobs/sha256/${digestHex(m.config.digest)}`, RepoTags: tags.length ? tags : null, Layers: layers };
    if (m.layers.some((l) => l.urls && l.urls.length > 0)) {
      // Docker keys LayerSources by diff ID (moby image/tarexport: map[layer.DiffID]Descriptor).
      const cfg = JSON.parse((await src.read(m.config.digest, 8 << 20)).toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
      const ids = cfg.rootfs?.diff_ids ?? [];
      entry.LayerSources = Object.fromEntries(m.layers.flatMap((l, i) => (l.urls?.length && ids[i] ? [[ids[i], l]] : [])));
    }
    manifest.push(entry);
    const top = m.layers.at(-1);
    for (const t of tags) {
      const i = t.lastIndexOf(':');
      (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = top ? digestHex(top.digest) : digestHex(m.config.digest);
    }
  }
  return { manifest, repositories };
}

async function pickManifest(src: ContentStore, desc: Descriptor, platform: Platform): Promise<Descriptor> {
  let cur = desc;
  for (let depth = 0; depth < 8; depth++) {
    if (isImageManifest(cur.mediaType)) return cur;
    if (!isIndex(cur.mediaType)) throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `${cur.digest}: ${cur.mediaType} is not an image`);
    const children = await childDescriptors(src, cur);
    const next = children.find((c) => platformMatches(platform, c.platform)) ?? (children.length === 1 ? children[0] : undefined);
    if (!next) throw new ContentError('NOT_FOUND', `index ${desc.digest} has no manifest for ${platform.os}/${platform.architecture}`);
    cur = next;
  }
  throw new ContentError('INVALID_MANIFEST', `index ${desc.digest}: nested too deep`);
}
