import { Readable } from 'node:stream';
import type { Descriptor } from '../../src/oci/descriptor.js';
import type { Digest } from '../../src/oci/digest.js';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import { isImageManifest, isIndex } from '../../src/oci/media-types.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../../src/oci/platform.js';
import type { Reference } from '../../src/oci/reference.js';
import { ContentError } from '../../src/util/errors.js';
import { RegistryError } from '../transport/errors.js';
import type { RemoteOptions } from './options.js';
import { childrenOf, mapLimit, parseIndex } from './parse.js';
import { PartialFileTarget, type ResumableWriter } from './partial.js';
import { Repository, type FetchedManifest } from './repository.js';

/** What {@link pullDetailed} fetched. */
export interface PullResult {
  /** The manifest or index the reference resolved to (what a tag should point at). */
  readonly descriptor: Descriptor;
  /** The single-platform manifest chosen from an index (equal to `descriptor` for a plain manifest). */
  readonly image: Descriptor;
  /** Blobs downloaded (excluding ones already present). */
  readonly downloaded: number;
}

/**
 * Pulls `ref` into `store`: resolves the tag (or digest), fetches the manifest (OCI or Docker
 * schema 2); for an index, the entry for `opts.platform` (default: the host's) and the index
 * itself. Layers are downloaded in parallel (`concurrency`, default 4), each verified while it
 * streams into the store and resumed with Range after a dropped connection; blobs already in
 * the store are skipped. Manifests are stored after their blobs, so the store never holds a
 * manifest whose blobs are missing. A pull that fails removes the blobs it added, except after a
 * temporary failure (network, 5xx) with `partialDir` set, when they are kept for the next run. With `allPlatforms`, every image of an index is stored. Returns the descriptor of the manifest/index fetched.
 */
export async function pull(ref: Reference, store: ContentStore, opts: RemoteOptions = {}): Promise<Descriptor> {
  return (await pullDetailed(ref, store, opts)).descriptor;
}

/** {@link pull}, also returning the chosen platform manifest and a download count. */
export async function pullDetailed(ref: Reference, store: ContentStore, opts: RemoteOptions = {}): Promise<PullResult> {
  const repo = new Repository(ref, opts, ['pull']);
  const added: Digest[] = [];
  try {
    return await pullInto(repo, ref, store, opts, added);
  } catch (e) {
    // A pull that failed for good (bad content, refused access) leaves the store as it was; one
    // cut short by a temporary failure keeps its verified blobs for the next run to skip.
    const temporary = e instanceof RegistryError && e.temporary && e.code !== 'ABORTED';
    if (!temporary || !opts.partialDir) {
      for (const d of added.reverse()) await store.delete(d).catch(() => undefined);
    }
    throw e;
  } finally {
    await repo.close();
  }
}

async function pullInto(repo: Repository, ref: Reference, store: ContentStore, opts: RemoteOptions, added: Digest[]): Promise<PullResult> {
  const top = await repo.getManifest(ref.digest ?? ref.tag ?? 'latest');
  const counter = { n: 0, added };
  if (isIndex(top.descriptor.mediaType)) {
    const idx = parseIndex(top.bytes, `index ${top.descriptor.digest} of ${repo.name}`);
    if (opts.allPlatforms) {
      const images = idx.manifests.filter((m) => isImageManifest(m.mediaType));
      if (!images.length) throw new ContentError('NOT_FOUND', `pulling ${repo.name}: index ${top.descriptor.digest} has no image manifests`);
      let first: Descriptor | undefined;
      for (const m of images) {
        const child = await repo.getManifest(m.digest);
        await pullNode(repo, store, child, counter);
        first ??= { ...child.descriptor, ...(m.platform ? { platform: m.platform } : {}) };
      }
      await putManifest(store, top, added);
      const want = opts.platform ?? hostPlatform();
      const chosen = selectPlatform(idx.manifests, want);
      return { descriptor: top.descriptor, image: chosen ?? first!, downloaded: counter.n };
    }
    const want = opts.platform ?? hostPlatform();
    const chosen = selectPlatform(idx.manifests, want);
    if (!chosen) {
      const have = idx.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
      throw new ContentError('NOT_FOUND', `pulling ${repo.name}: no image for ${formatPlatform(want)} in the index (has ${have || 'nothing'})`);
    }
    const child = await repo.getManifest(chosen.digest);
    await pullNode(repo, store, child, counter);
    await putManifest(store, top, added);
    return { descriptor: top.descriptor, image: { ...child.descriptor, ...(chosen.platform ? { platform: chosen.platform } : {}) }, downloaded: counter.n };
  }
  if (!isImageManifest(top.descriptor.mediaType) && !top.descriptor.mediaType.startsWith('application/vnd.oci.')) {
    throw new RegistryError('UNSUPPORTED', `pulling ${repo.name}: unsupported manifest media type ${top.descriptor.mediaType}`, { ref: repo.name });
  }
  await pullNode(repo, store, top, counter);
  return { descriptor: top.descriptor, image: top.descriptor, downloaded: counter.n };
}

/** The best index entry for a platform: exact variant match first, then os/arch. */
export function selectPlatform(ms: readonly Descriptor[], want: Platform): Descriptor | undefined {
  const cands = ms.filter((m) => isImageManifest(m.mediaType) && platformMatches(want, m.platform));
  return cands.find((m) => m.platform?.variant === want.variant) ?? cands[0];
}

async function pullNode(repo: Repository, store: ContentStore, m: FetchedManifest, counter: { n: number; added: Digest[] }): Promise<void> {
  const blobs = childrenOf(m.descriptor.mediaType, m.bytes, `manifest ${m.descriptor.digest} of ${repo.name}`);
  await mapLimit(blobs, repo.opts.concurrency ?? 4, async (b) => {
    const progress = repo.opts.onProgress;
    const have = await store.stat(b.digest);
    if (have && have.size === b.size) {
      progress?.({ digest: b.digest, state: 'done', done: b.size, total: b.size, skipped: true });
      return;
    }
    const onBytes = progress ? (n: number) => progress({ digest: b.digest, state: 'progress', done: n, total: b.size }) : undefined;
    const w = repo.opts.partialDir ? await new PartialFileTarget(repo.opts.partialDir, store).open(b) : undefined;
    progress?.({ digest: b.digest, state: 'start', done: w?.offset ?? 0, total: b.size });
    if (w) await downloadResumable(repo, store, b, w, onBytes);
    // the store verifies digest and size while writing (and keeps nothing on a mismatch): the
    // bytes are hashed once, there
    else await store.put(Readable.from(repo.blobFrom(b, 0, onBytes), { objectMode: false }), { mediaType: b.mediaType, digest: b.digest, size: b.size });
    counter.n++;
    counter.added.push(b.digest);
    progress?.({ digest: b.digest, state: 'done', done: b.size, total: b.size });
  });
  await putManifest(store, m, counter.added);
}

async function putManifest(store: ContentStore, m: FetchedManifest, added: Digest[]): Promise<void> {
  if (await store.has(m.descriptor.digest)) return;
  await store.put(m.bytes, m.descriptor);
  added.push(m.descriptor.digest);
}

/**
 * Downloads a blob through a resumable writer: continues after the bytes an earlier run left,
 * keeps them when this run fails (for the next one), and verifies the whole blob on commit.
 * A partial file that fails verification is dropped and the blob fetched again from byte 0.
 */
async function downloadResumable(repo: Repository, store: ContentStore, b: Descriptor, w: ResumableWriter, onBytes?: (n: number) => void): Promise<void> {
  const resumedFrom = w.offset;
  if (w.finish) {
    // the partial file is the download's only copy: written once, hashed once, renamed into the store
    if (resumedFrom > 0) repo.opts.logger?.debug(`blob ${b.digest}: resuming an earlier download at ${resumedFrom}/${b.size} bytes`);
    try {
      await w.finish(repo.blobFrom(b, resumedFrom, onBytes));
      return;
    } catch (e) {
      const bad = e instanceof ContentError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH');
      await (bad ? w.discard() : w.keep());
      if (!bad || resumedFrom === 0) throw e;
      repo.opts.logger?.warn(`blob ${b.digest}: the partial download of an earlier run did not verify; downloading it again`);
      await store.put(Readable.from(repo.blobFrom(b, 0, onBytes), { objectMode: false }), { mediaType: b.mediaType, digest: b.digest, size: b.size });
      return;
    }
  }
  if (resumedFrom === 0) {
    // A fresh download goes straight into the store (verified there, written once); the bytes
    // are copied to the partial file on the way, so that a failed run leaves them for the next.
    try {
      await store.put(Readable.from(w.tee(repo.blobFrom(b, 0, onBytes)), { objectMode: false }), { mediaType: b.mediaType, digest: b.digest, size: b.size });
    } catch (e) {
      const bad = e instanceof ContentError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH');
      await (bad ? w.discard() : w.keep());
      throw e;
    }
    await w.discard();
    return;
  }
  repo.opts.logger?.debug(`blob ${b.digest}: resuming an earlier download at ${resumedFrom}/${b.size} bytes`);
  try {
    if (w.offset < b.size) await w.append(repo.blobFrom(b, w.offset, onBytes));
  } catch (e) {
    await w.keep();
    throw e;
  }
  try {
    await w.commit();
  } catch (e) {
    const bad = e instanceof ContentError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH');
    if (!bad || resumedFrom === 0) throw e;
    repo.opts.logger?.warn(`blob ${b.digest}: the partial download of an earlier run did not verify; downloading it again`);
    await store.put(repo.openBlob(b, onBytes), { mediaType: b.mediaType, digest: b.digest, size: b.size });
  }
}
