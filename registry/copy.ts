import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileContentStore } from '../src/oci/content/file-store.js';
import type { ContentStore } from '../src/oci/content/content-store.js';
import type { Descriptor } from '../src/oci/descriptor.js';
import { copyGraph } from '../src/oci/layout/graph.js';
import type { IndexManifest } from '../src/oci/manifest.js';
import { Annotations } from '../src/oci/manifest.js';
import { MediaTypes, isIndex } from '../src/oci/media-types.js';
import { parseReference, type Reference } from '../src/oci/reference.js';
import { ContentError, UsageError } from '../src/util/errors.js';
import { remoteImage, remoteIndex, remoteHead } from './remote/image.js';
import type { RemoteOptions } from './remote/options.js';
import { pull } from './remote/pull.js';
import { push } from './remote/push.js';

/**
 * One end of a copy: a registry reference (`docker://`), an OCI layout directory
 * (`oci:DIR[:tag]`), or content in a local store rooted at a descriptor (the CLI maps image
 * store names to this).
 */
export type CopyEndpoint =
  | { readonly kind: 'docker'; readonly ref: Reference }
  | { readonly kind: 'oci'; readonly dir: string; readonly tag?: string }
  | { readonly kind: 'store'; readonly store: ContentStore; readonly descriptor?: Descriptor };

/**
 * Parses `docker://REF` and `oci:DIR[:TAG]` (skopeo's transport syntax). Returns undefined
 * for anything else, which callers treat as a local image name.
 */
export function parseTransport(s: string): CopyEndpoint | undefined {
  if (s.startsWith('docker://')) return { kind: 'docker', ref: parseReference(s.slice('docker://'.length)) };
  if (s.startsWith('oci:')) {
    const rest = s.slice(4);
    if (!rest) throw new UsageError('INVALID_ARGUMENT', `invalid transport ${JSON.stringify(s)}: want oci:DIR[:TAG]`);
    const i = rest.lastIndexOf(':');
    if (i > 0 && !rest.slice(i + 1).includes('/')) return { kind: 'oci', dir: rest.slice(0, i), tag: rest.slice(i + 1) };
    return { kind: 'oci', dir: rest };
  }
  return undefined;
}

/** Options of {@link copy}: remote options for the registry side(s). */
export interface CopyOptions extends RemoteOptions {
  /** registry → registry/layout/store: copy every platform of an index (default: only `platform`'s for pulls; all for registry → registry). */
  readonly allPlatforms?: boolean;
}

/**
 * Copies an image or index from `src` to `dst`, verifying every blob on the way (the store
 * and the registry check digests; remote reads are verified while streaming). Returns the
 * descriptor of what was copied (the top manifest or index).
 */
export async function copy(src: CopyEndpoint, dst: CopyEndpoint, opts: CopyOptions = {}): Promise<Descriptor> {
  if (src.kind === 'docker') {
    if (dst.kind === 'docker') {
      const head = await remoteHead(src.ref, opts);
      const mountFrom = src.ref.registry === dst.ref.registry ? [src.ref.repository, ...(opts.mountFrom ?? [])] : opts.mountFrom;
      const o = { ...opts, ...(mountFrom ? { mountFrom } : {}) };
      return isIndex(head.mediaType) && opts.allPlatforms !== false ? push(dst.ref, await remoteIndex(src.ref, opts), o) : push(dst.ref, await remoteImage(src.ref, opts), o);
    }
    if (dst.kind === 'store') return pull(src.ref, dst.store, opts);
    return intoLayout(dst.dir, dst.tag, (store) => pull(src.ref, store, opts));
  }
  const from = await resolveLocal(src);
  if (dst.kind === 'docker') return push(dst.ref, { store: from.store, descriptor: from.descriptor }, opts);
  if (dst.kind === 'store') {
    await copyGraph(from.store, dst.store, from.descriptor);
    return from.descriptor;
  }
  return intoLayout(dst.dir, dst.tag, async (store) => {
    await copyGraph(from.store, store, from.descriptor);
    return from.descriptor;
  });
}

async function resolveLocal(e: CopyEndpoint): Promise<{ store: ContentStore; descriptor: Descriptor }> {
  if (e.kind === 'store') {
    if (!e.descriptor) throw new UsageError('INVALID_ARGUMENT', 'copy source in a store needs a descriptor');
    return { store: e.store, descriptor: e.descriptor };
  }
  if (e.kind !== 'oci') throw new UsageError('INVALID_ARGUMENT', 'not a local source');
  const index = await readIndexJson(e.dir);
  if (!index) throw new ContentError('NOT_FOUND', `no OCI layout (index.json) in ${e.dir}`);
  const ms = index.manifests;
  const pick = e.tag ? ms.filter((m) => m.annotations?.[Annotations.RefName] === e.tag) : ms.length === 1 ? ms : [];
  if (pick.length !== 1) {
    const what = e.tag ? `tag ${e.tag}` : 'a single image (name a tag: oci:DIR:TAG)';
    throw new ContentError('NOT_FOUND', `OCI layout ${e.dir}: ${pick.length === 0 ? 'no' : 'more than one'} entry for ${what}`);
  }
  return { store: new FileContentStore(e.dir), descriptor: pick[0]! };
}

async function readIndexJson(dir: string): Promise<IndexManifest | undefined> {
  let raw: string;
  try {
    raw = await readFile(join(dir, 'index.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ContentError('IO', `reading index.json in ${dir}`, { cause: e });
  }
  try {
    const j = JSON.parse(raw) as IndexManifest;
    if (j.schemaVersion !== 2 || !Array.isArray(j.manifests)) throw new Error('not an image index');
    return j;
  } catch (e) {
    throw new ContentError('INVALID_ARCHIVE', `index.json in ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/**
 * Fills an OCI layout at `dir` through `fill` (blobs land directly in `dir/blobs`, via a temp
 * dir inside `dir`), then adds the result to index.json under `tag` (replacing an entry with
 * the same tag), written atomically.
 */
async function intoLayout(dir: string, tag: string | undefined, fill: (store: ContentStore) => Promise<Descriptor>): Promise<Descriptor> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const tmpDir = join(dir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let desc: Descriptor;
  try {
    desc = await fill(new FileContentStore(dir, { tmpDir }));
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
  const index = (await readIndexJson(dir)) ?? { schemaVersion: 2 as const, mediaType: MediaTypes.OciIndex, manifests: [] };
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, ...(tag ? { annotations: { [Annotations.RefName]: tag } } : {}) };
  const kept = index.manifests.filter((m) => (tag ? m.annotations?.[Annotations.RefName] !== tag : m.digest !== desc.digest));
  const next: IndexManifest = { schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: [...kept, entry] };
  await atomicWrite(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await atomicWrite(join(dir, 'index.json'), JSON.stringify(next));
  return desc;
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
