import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentStore } from '../content/content-store.js';
import { FileContentStore, fsyncDir } from '../content/file-store.js';
import type { Descriptor } from '../descriptor.js';
import { Annotations, type IndexManifest } from '../manifest.js';
import { MediaTypes } from '../media-types.js';
import { familiarName, formatReference, parseReference } from '../reference.js';
import { ContentError } from '../../util/errors.js';
import { copyGraph } from './graph.js';

/** The `oci-layout` file content (image-spec image-layout.md). */
export const OCI_LAYOUT_FILE = { imageLayoutVersion: '1.0.0' } as const;

/** One entry of a layout's (or archive's) top-level index, with the names it carries. */
export interface LayoutEntry {
  readonly descriptor: Descriptor;
  /**
   * Full normalised references named by the entry's annotations: `io.containerd.image.name`,
   * or `org.opencontainers.image.ref.name` when that holds a whole reference. Empty when the
   * entry is untagged or only carries a bare tag (see `refName`).
   */
  readonly names: string[];
  /** The raw `org.opencontainers.image.ref.name` annotation, if any (often just a tag). */
  readonly refName?: string;
}

/** A layout directory opened for reading. */
export interface OciLayout {
  readonly dir: string;
  /** Its `blobs/` as a read-only content store (reads are verified). */
  readonly content: ContentStore;
  readonly index: IndexManifest;
  readonly entries: LayoutEntry[];
}

/** Opens an OCI image layout directory: checks `oci-layout`, parses `index.json`. */
export async function readLayout(dir: string): Promise<OciLayout> {
  let layout: { imageLayoutVersion?: unknown };
  try {
    layout = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: unknown };
  } catch (e) {
    throw new ContentError('INVALID_ARCHIVE', `reading oci-layout in ${dir}`, { cause: e });
  }
  if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
    throw new ContentError('INVALID_ARCHIVE', `${dir}: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
  }
  let raw: string;
  try {
    raw = await readFile(join(dir, 'index.json'), 'utf8');
  } catch (e) {
    throw new ContentError('INVALID_ARCHIVE', `reading index.json in ${dir}`, { cause: e });
  }
  const index = parseIndexJson(raw, `index.json in ${dir}`);
  return { dir, content: new FileContentStore(dir), index, entries: entriesOf(index) };
}

/** Parses a layout's index.json; throws INVALID_ARCHIVE naming `where`. */
export function parseIndexJson(raw: string, where: string): IndexManifest {
  let index: IndexManifest;
  try {
    index = JSON.parse(raw) as IndexManifest;
  } catch (e) {
    throw new ContentError('INVALID_ARCHIVE', `parsing ${where}`, { cause: e });
  }
  if (typeof index !== 'object' || index === null || index.schemaVersion !== 2 || !Array.isArray(index.manifests)) {
    throw new ContentError('INVALID_ARCHIVE', `${where}: not an image index (schemaVersion 2 with manifests)`);
  }
  for (const m of index.manifests) {
    if (typeof m?.digest !== 'string' || typeof m.mediaType !== 'string' || typeof m.size !== 'number' || m.size < 0) {
      throw new ContentError('INVALID_DESCRIPTOR', `${where}: invalid descriptor ${JSON.stringify(m)}`);
    }
  }
  return index;
}

/** The entries (with names) of a layout index. */
export function entriesOf(index: IndexManifest): LayoutEntry[] {
  return index.manifests.map((descriptor) => {
    const a = descriptor.annotations ?? {};
    const names: string[] = [];
    const full = a[Annotations.ContainerdImageName];
    const refName = a[Annotations.RefName];
    const add = (s: string | undefined): void => {
      if (!s) return;
      try {
        const n = formatReference(parseReference(s));
        if (!names.includes(n)) names.push(n);
      } catch {
        /* not a reference */
      }
    };
    if (full && refName && !/[/:]/.test(refName)) {
      // Tools that derive a new image (umoci repack) copy the annotations and set only a new
      // ref.name: the tag in ref.name wins over a stale containerd name.
      try {
        const r = parseReference(full);
        add(formatReference({ registry: r.registry, repository: r.repository, tag: refName }));
      } catch {
        /* malformed containerd name: ignore it */
      }
    } else add(full);
    if (names.length === 0 && refName && /[/:]/.test(refName)) add(refName);
    return refName ? { descriptor, names, refName } : { descriptor, names };
  });
}

/** What to put in a layout: a root descriptor in `source` and the names (full references) to give it. */
export interface LayoutWriteEntry {
  readonly descriptor: Descriptor;
  readonly names?: readonly string[];
}

/**
 * The index.json descriptor(s) for one entry: one per name, annotated the way Docker 25
 * `docker save` does (`io.containerd.image.name` = full reference,
 * `org.opencontainers.image.ref.name` = tag), or one unannotated descriptor when untagged.
 */
export function indexDescriptors(e: LayoutWriteEntry): Descriptor[] {
  const base: Descriptor = { mediaType: e.descriptor.mediaType, digest: e.descriptor.digest, size: e.descriptor.size, ...(e.descriptor.platform ? { platform: e.descriptor.platform } : {}) };
  if (!e.names || e.names.length === 0) return [base];
  return e.names.map((n) => {
    const r = parseReference(n);
    const annotations: Record<string, string> = { [Annotations.ContainerdImageName]: formatReference(r) };
    if (r.tag) annotations[Annotations.RefName] = r.tag;
    return { ...base, annotations };
  });
}

/** The index.json of a layout holding `entries`. */
export function layoutIndex(entries: readonly LayoutWriteEntry[]): IndexManifest {
  return { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: entries.flatMap(indexDescriptors) };
}

/**
 * Writes (or adds to) an OCI image layout at `dir`: every blob under each entry is copied from
 * `source` one at a time, streamed and verified, children before parents; then `oci-layout`
 * and `index.json` are written atomically. An existing index.json keeps its other entries;
 * entries with the same `org.opencontainers.image.ref.name`/`io.containerd.image.name` are replaced.
 */
export async function writeLayout(dir: string, source: ContentStore, entries: readonly LayoutWriteEntry[]): Promise<IndexManifest> {
  const tmpDir = join(dir, `.tmp-${process.pid}`);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const dst = new FileContentStore(dir, { tmpDir });
  let existing: IndexManifest | undefined;
  try {
    existing = parseIndexJson(await readFile(join(dir, 'index.json'), 'utf8'), `index.json in ${dir}`);
  } catch (e) {
    if (!isEnoent(e)) throw e;
  }
  try {
    const seen = new Set<string>();
    for (const e of entries) await copyGraph(source, dst, e.descriptor, { seen });
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
  const fresh = layoutIndex(entries);
  const key = (d: Descriptor): string | undefined => d.annotations?.[Annotations.ContainerdImageName] ?? d.annotations?.[Annotations.RefName];
  const replaced = new Set(fresh.manifests.map(key).filter((k): k is string => !!k));
  const freshDigests = new Set(fresh.manifests.map((d) => d.digest));
  const kept = (existing?.manifests ?? []).filter((d) => {
    const k = key(d);
    return k ? !replaced.has(k) : !freshDigests.has(d.digest);
  });
  const index: IndexManifest = { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [...kept, ...fresh.manifests] };
  await atomicWrite(join(dir, 'oci-layout'), `${JSON.stringify(OCI_LAYOUT_FILE)}`);
  await atomicWrite(join(dir, 'index.json'), JSON.stringify(index));
  await fsyncDir(dir);
  return index;
}

/** `busybox:latest` style name for messages and `RepoTags`. */
export function shortName(name: string): string {
  return familiarName(parseReference(name));
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

function isEnoent(e: unknown): boolean {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    if ((cur as NodeJS.ErrnoException).code === 'ENOENT') return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}
