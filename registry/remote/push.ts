import { Readable } from 'node:stream';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import type { Image, ImageIndex } from '../../src/oci/image.js';
import { isIndex } from '../../src/oci/media-types.js';
import { formatPlatform } from '../../src/oci/platform.js';
import { formatReference, type Reference } from '../../src/oci/reference.js';
import { repositoryScope } from '../transport/auth.js';
import { RegistryError } from '../transport/errors.js';
import { isConnectionError, type RegistryResponse } from '../transport/fetch.js';
import { Headers } from '../transport/headers.js';
import { MAX_MANIFEST_BYTES, type RemoteOptions } from './options.js';
import { childrenOf, mapLimit } from './parse.js';
import { countChunks, Repository } from './repository.js';

/** Content already in a local store, rooted at a manifest or index descriptor. */
export interface StoredArtifact {
  readonly store: ContentStore;
  readonly descriptor: Descriptor;
}

/** What {@link push} accepts. */
export type PushArtifact = Image | ImageIndex | StoredArtifact;

/** A blob to upload: its descriptor and a way to get a fresh stream of it. */
export interface BlobSource {
  readonly descriptor: Descriptor;
  open(): Promise<Readable>;
}

/**
 * Byte-mode streams over generators: Readable.from() defaults to object mode, which buffers 16
 * chunks (16 MiB of 1 MiB file reads per upload) instead of about one.
 */
const BYTES = { objectMode: false } as const;

function isStored(a: PushArtifact): a is StoredArtifact {
  return 'store' in a && 'descriptor' in a;
}

function isImageIndexObj(a: Image | ImageIndex): a is ImageIndex {
  return 'image' in a && 'index' in a && !('layers' in a);
}

/**
 * Pushes an image, an index, or a manifest graph from a store to `ref` and returns the
 * descriptor of the top manifest. Blobs first (in parallel, `concurrency`, default 4), each
 * skipped when the repository has it (HEAD), else mounted from `mountFrom` repositories, else
 * uploaded: in one PUT up to `chunkThreshold`, in PATCH chunks above (a broken chunk upload is
 * resumed from the Range the registry reports). Index children are pushed by digest before
 * the index. The top manifest is put under `ref.tag` (or its digest when `ref` has only a
 * digest), with its own media type as Content-Type.
 */
export async function push(ref: Reference, artifact: PushArtifact, opts: RemoteOptions = {}): Promise<Descriptor> {
  const repo = new Repository(ref, opts, ['pull', 'push']);
  for (const from of opts.mountFrom ?? []) repo.client.addScopes(repositoryScope(from, ['pull']));
  const uploaded = new Map<string, Promise<void>>();
  try {
    const target = ref.tag;
    let top: Descriptor;
    if (isStored(artifact)) top = await pushStored(repo, artifact.store, artifact.descriptor, target, uploaded);
    else if (isImageIndexObj(artifact)) top = await pushIndex(repo, artifact, target, uploaded);
    else top = await pushImage(repo, artifact, target, uploaded);
    if (ref.digest && ref.digest !== top.digest) {
      throw new RegistryError('DIGEST_INVALID', `pushing ${repo.name}: the artifact has digest ${top.digest}, not ${ref.digest}`, { ref: repo.name });
    }
    return top;
  } finally {
    await repo.close();
  }
}

type Uploads = Map<string, Promise<void>>;

function once(uploaded: Uploads, d: string, f: () => Promise<void>): Promise<void> {
  let p = uploaded.get(d);
  if (!p) {
    p = f();
    uploaded.set(d, p);
  }
  return p;
}

async function pushImage(repo: Repository, img: Image, tag: string | undefined, uploaded: Uploads): Promise<Descriptor> {
  const [raw, mediaType, manifest] = await Promise.all([img.rawManifest(), img.mediaType(), img.manifest()]);
  checkManifestSize(repo, raw);
  const layers = await img.layers();
  const sources: BlobSource[] = [
    {
      descriptor: manifest.config,
      open: async () => Readable.from([Buffer.from(await img.rawConfig())]),
    },
    ...layers.map((l, i): BlobSource => ({ descriptor: manifest.layers[i]!, open: () => l.compressed() })),
  ];
  await mapLimit(sources, repo.opts.concurrency ?? 4, (s) => once(uploaded, s.descriptor.digest, () => uploadBlob(repo, s)));
  return repo.putManifest(tag ?? (await img.digest()), raw, mediaType);
}

async function pushIndex(repo: Repository, idx: ImageIndex, tag: string | undefined, uploaded: Uploads): Promise<Descriptor> {
  const [raw, mediaType, m] = await Promise.all([idx.rawManifest(), idx.mediaType(), idx.manifest()]);
  checkManifestSize(repo, raw);
  for (const child of m.manifests) {
    if (isIndex(child.mediaType)) await pushIndex(repo, await idx.index(child.digest), undefined, uploaded);
    else await pushImage(repo, await idx.image(child.digest), undefined, uploaded);
  }
  return repo.putManifest(tag ?? (await idx.digest()), raw, mediaType);
}

async function pushStored(repo: Repository, store: ContentStore, desc: Descriptor, tag: string | undefined, uploaded: Uploads): Promise<Descriptor> {
  const raw = await store.read(desc.digest, MAX_MANIFEST_BYTES);
  checkManifestSize(repo, raw);
  const children = childrenOf(desc.mediaType, raw, `manifest ${desc.digest}`);
  if (isIndex(desc.mediaType)) {
    for (const c of children) {
      // Index entries for platforms that were never pulled are not in the store: the
      // destination may still have them (pushed back to where they came from); otherwise the
      // index cannot be pushed, and that is said before the registry refuses it.
      if (!(await store.has(c.digest))) {
        const there = await repo.headManifest(c.digest, 'pushing').then(
          () => true,
          (e: unknown) => {
            if (e instanceof RegistryError && (e.code === 'MANIFEST_UNKNOWN' || e.status === 404)) return false;
            throw e;
          },
        );
        if (!there) {
          const plat = c.platform ? ` (${formatPlatform(c.platform)})` : '';
          throw new RegistryError(
            'MANIFEST_BLOB_UNKNOWN',
            `pushing ${repo.name}: index entry ${c.digest}${plat} is neither in the local store nor in the destination repository; pull the image with --all-platforms first`,
            { ref: repo.name },
          );
        }
        repo.opts.logger?.debug(`pushing ${repo.name}: index entry ${c.digest} is not in the local store but the repository has it`);
        continue;
      }
      await pushStored(repo, store, c, undefined, uploaded);
    }
  } else {
    await mapLimit(children, repo.opts.concurrency ?? 4, (c) =>
      once(uploaded, c.digest, () => uploadBlob(repo, { descriptor: c, open: () => store.open(c) })),
    );
  }
  return repo.putManifest(tag ?? desc.digest, raw, desc.mediaType);
}

function checkManifestSize(repo: Repository, raw: Uint8Array): void {
  if (raw.byteLength > MAX_MANIFEST_BYTES) {
    throw new RegistryError('MANIFEST_TOO_LARGE', `pushing ${repo.name}: manifest of ${raw.byteLength} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, { ref: repo.name });
  }
}

/**
 * Uploads one blob unless the repository has it: HEAD, then a cross-repository mount attempt
 * per `mountFrom`, then a monolithic or chunked upload (distribution-spec "Pushing blobs").
 */
export async function uploadBlob(repo: Repository, src: BlobSource): Promise<void> {
  const d = src.descriptor;
  const progress = repo.opts.onProgress;
  if ((await repo.headBlob(d.digest)) !== undefined) {
    progress?.({ digest: d.digest, state: 'done', done: d.size, total: d.size, skipped: true });
    return;
  }
  let session: RegistryResponse | undefined;
  for (const from of repo.opts.mountFrom ?? []) {
    if (from === repo.ref.repository) continue;
    const { req, res } = await repo.send('POST', `blobs/uploads/?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`, {
      idempotent: true,
      scopes: [repositoryScope(from, ['pull'])],
      headers: { [Headers.ContentLength]: '0' },
    });
    if (res.status === 201) {
      await res.discard();
      progress?.({ digest: d.digest, state: 'done', done: d.size, total: d.size, mounted: true });
      return;
    }
    if (res.status !== 202) throw await repo.fail(res, req, 'pushing');
    session = res;
    break;
  }
  if (!session) {
    const { req, res } = await repo.send('POST', 'blobs/uploads/', { idempotent: true, headers: { [Headers.ContentLength]: '0' } });
    if (res.status !== 202) throw await repo.fail(res, req, 'pushing');
    session = res;
  }
  await session.discard();
  let location = uploadLocation(repo, session);
  const threshold = repo.opts.chunkThreshold ?? 64 << 20;
  progress?.({ digest: d.digest, state: 'start', done: 0, total: d.size });
  if (d.size <= threshold) {
    const open = progress
      ? async () => Readable.from(countChunks(await src.open(), 0, (n) => progress({ digest: d.digest, state: 'progress', done: n, total: d.size })), BYTES)
      : () => src.open();
    await finish(repo, location, d, open);
  } else {
    const minChunk = Number(session.headers[Headers.OciChunkMinLength] ?? 0) || 0;
    const chunk = Math.max(repo.opts.chunkSize ?? 64 << 20, minChunk);
    location = await uploadChunks(repo, src, location, chunk);
    await finish(repo, location, d, undefined);
  }
  progress?.({ digest: d.digest, state: 'done', done: d.size, total: d.size });
}

function uploadLocation(repo: Repository, res: RegistryResponse): URL {
  const loc = res.headers[Headers.Location];
  if (!loc) throw new RegistryError('INVALID_RESPONSE', `pushing ${repo.name}: upload response without Location`, { ref: repo.name, status: res.status });
  return new URL(loc, res.url);
}

/** PUT `<location>?digest=` closing the session, with the whole blob as body or none. */
async function finish(repo: Repository, location: URL, d: Descriptor, body: (() => Promise<Readable>) | undefined): Promise<void> {
  const url = new URL(location);
  url.searchParams.set('digest', d.digest);
  const headers: Record<string, string> = { [Headers.ContentLength]: String(body ? d.size : 0) };
  if (body) headers[Headers.ContentType] = 'application/octet-stream';
  const { req, res } = await repo.send('PUT', url, { headers, ...(body ? { body } : {}) });
  if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw await repo.fail(res, req, 'pushing');
  await res.discard();
}

/**
 * Sends the blob in PATCH chunks with Content-Range. When a chunk fails (connection lost,
 * 5xx), asks the session for its Range (`GET <location>` → 204 `Range: 0-<last>`) and
 * continues from there with a fresh source stream.
 */
async function uploadChunks(repo: Repository, src: BlobSource, location: URL, chunk: number): Promise<URL> {
  const size = src.descriptor.size;
  const maxFailures = repo.opts.resumeAttempts ?? 5;
  let offset = 0;
  let failures = 0;
  let reader = new ByteReader(await src.open());
  try {
    while (offset < size) {
      const end = Math.min(offset + chunk, size) - 1;
      const len = end - offset + 1;
      const progress = repo.opts.onProgress;
      const from = offset;
      const chunkBytes = reader.take(len);
      const body = Readable.from(progress ? countChunks(chunkBytes, from, (n) => progress({ digest: src.descriptor.digest, state: 'progress', done: n, total: size })) : chunkBytes, BYTES);
      let res: RegistryResponse | undefined;
      let err: unknown;
      try {
        const r = await repo.send('PATCH', location, {
          headers: {
            [Headers.ContentType]: 'application/octet-stream',
            [Headers.ContentRange]: `${offset}-${end}`,
            [Headers.ContentLength]: String(len),
          },
          body,
        });
        res = r.res;
        if (res.status !== 202) {
          err = await repo.fail(res, r.req, 'pushing');
          res = undefined;
        }
      } catch (e) {
        err = e;
      }
      if (res) {
        await res.discard();
        location = uploadLocation(repo, res);
        offset = end + 1;
        failures = 0;
        continue;
      }
      const temporary = err instanceof RegistryError ? err.temporary || err.code === 'RANGE_INVALID' || err.status === 416 : isConnectionError(err);
      if (++failures > maxFailures || !temporary) throw err;
      repo.opts.logger?.debug(`blob ${src.descriptor.digest}: chunk ${offset}-${end} failed, asking the registry where to resume`);
      const status = await uploadStatus(repo, location);
      location = status.location;
      offset = status.next;
      reader.close();
      reader = new ByteReader(await src.open());
      await reader.skip(offset);
    }
    return location;
  } finally {
    reader.close();
  }
}

/** `GET <upload location>`: where the registry's copy of an upload ends. */
async function uploadStatus(repo: Repository, location: URL): Promise<{ location: URL; next: number }> {
  const { req, res } = await repo.send('GET', location);
  if (res.status !== 204 && res.status !== 200) throw await repo.fail(res, req, 'pushing');
  await res.discard();
  const range = res.headers[Headers.Range];
  const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
  const next = m ? Number(m[1]) + 1 : 0;
  const loc = res.headers[Headers.Location] ? new URL(res.headers[Headers.Location]!, res.url) : location;
  return { location: loc, next };
}

/** Reads exact byte counts from a stream, chunk after chunk (for PATCH bodies). */
class ByteReader {
  readonly #src: Readable;
  readonly #it: AsyncIterator<Buffer>;
  #pending: Buffer | undefined;

  constructor(src: Readable) {
    this.#src = src;
    this.#it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      let b = this.#pending;
      this.#pending = undefined;
      if (!b) {
        const r = await this.#it.next();
        if (r.done) throw new RegistryError('INVALID_RESPONSE', `blob source ended ${n} bytes early`);
        b = r.value;
      }
      if (b.length > n) {
        this.#pending = b.subarray(n);
        b = b.subarray(0, n);
      }
      n -= b.length;
      yield b;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) void _;
  }

  close(): void {
    this.#src.destroy();
  }
}

/** The canonical string of a pushed reference: `registry/repo@digest`. */
export function pushedReference(ref: Reference, d: Descriptor): string {
  const { tag: _t, ...rest } = ref;
  void _t;
  return formatReference({ ...rest, digest: d.digest });
}
