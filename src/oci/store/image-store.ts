import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentStore } from '../content/content-store.js';
import { FileContentStore, fsyncDir, processAlive } from '../content/file-store.js';
import type { Descriptor } from '../descriptor.js';
import { digestHex, isDigest, type Digest } from '../digest.js';
import type { Image, ImageIndex } from '../image.js';
import type { ImageManifest, IndexManifest } from '../manifest.js';
import { isImageManifest, isIndex } from '../media-types.js';
import { hostPlatform, platformMatches, type Platform } from '../platform.js';
import { formatReference, parseReference } from '../reference.js';
import { childDescriptors, copyGraph, MAX_MANIFEST_BYTES, sniffDescriptor, walkGraph } from '../layout/graph.js';
import { imageFromContent, indexFromContent } from '../layout/from-content.js';
import { ContentError } from '../../util/errors.js';
import { nullLogger, type Logger } from '../../util/logger.js';
import { withLock } from './lock.js';

/** One named (or untagged) image of the store. */
export interface ImageRecord {
  /** Full normalised reference (docker.io/library/busybox:latest), or '' for an untagged image. */
  readonly name: string;
  /** The image manifest or index. */
  readonly descriptor: Descriptor;
  /** When the record was written (RFC 3339). */
  readonly created: string;
  /**
   * Docker-style image ID: the config digest for an image manifest, the index digest for an
   * index. `IMAGE ID` columns show the first 12 hex characters.
   */
  readonly id: Digest;
}

interface Db {
  schemaVersion: 1;
  images: ImageRecord[];
}

/** Directory under the store root holding writers' leases (see {@link ImageStore.lease}). */
export const LEASES_DIR = 'leases';

/** Directory under the store root whose files name extra gc roots (see {@link ImageStore.gc}). */
export const GC_ROOTS_DIR = 'gc-roots';

/**
 * The local image store at a root directory:
 *
 * - `<root>/blobs/sha256/<hex>`: content ({@link FileContentStore}); `<root>/tmp/`: its temp files
 * - `<root>/images.json`: names → descriptors, rewritten atomically (temp, fsync, rename, fsync dir)
 *   under the inter-process lock `<root>/images.lock`
 * - `<root>/leases/*`: writers in progress; gc spares blobs written since a live lease began
 * - `<root>/gc-roots/*`: extra gc roots, one digest per line (`#` comments allowed). Any
 *   component that keeps blobs outside named images (a build in progress, a container's image,
 *   a cache) writes a file here and removes it when done; {@link gc} never deletes what they
 *   reach.
 */
export class ImageStore {
  readonly root: string;
  readonly content: FileContentStore;
  readonly #logger: Logger;

  private constructor(root: string, logger: Logger) {
    this.root = root;
    this.content = new FileContentStore(root);
    this.#logger = logger;
  }

  /** Opens (creating if needed) the store at `root`. */
  static async open(root: string, opts: { logger?: Logger } = {}): Promise<ImageStore> {
    try {
      await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
      await mkdir(join(root, 'tmp'), { recursive: true });
    } catch (e) {
      throw new ContentError('IO', `creating image store in ${root}`, { cause: e });
    }
    return new ImageStore(root, opts.logger ?? nullLogger);
  }

  get #dbPath(): string {
    return join(this.root, 'images.json');
  }

  /** Every record, names sorted, untagged ones last. */
  async list(): Promise<ImageRecord[]> {
    const db = await this.#read();
    return [...db.images].sort((a, b) => (a.name === '' ? 1 : 0) - (b.name === '' ? 1 : 0) || a.name.localeCompare(b.name));
  }

  /**
   * Finds a record by name (normalised like docker: `busybox` = docker.io/library/busybox:latest),
   * `name@digest`, full digest (manifest or ID), or an ID prefix (hex, like `docker images` shows).
   * Throws ContentError NOT_FOUND naming `nameOrId`, or INVALID_REFERENCE for an ambiguous prefix.
   */
  async resolve(nameOrId: string): Promise<ImageRecord> {
    const recs = (await this.#read()).images;
    const s = nameOrId.trim();
    if (s.startsWith('sha256:') && isDigest(s)) {
      const r = recs.find((x) => x.descriptor.digest === s) ?? recs.find((x) => x.id === s);
      if (r) return r;
      throw new ContentError('NOT_FOUND', `image ${nameOrId} not found`);
    }
    let ref;
    try {
      ref = parseReference(s);
    } catch {
      ref = undefined;
    }
    if (ref) {
      if (ref.digest) {
        const byDigest = recs.filter((x) => x.descriptor.digest === ref.digest);
        const sameRepo = byDigest.find((x) => x.name !== '' && sameRepository(x.name, ref.registry, ref.repository));
        const r = sameRepo ?? byDigest[0];
        if (r) return r;
      } else {
        const name = formatReference(ref);
        const r = recs.find((x) => x.name === name);
        if (r) return r;
      }
    }
    if (/^[a-f0-9]{1,64}$/.test(s)) {
      const ids = new Map<string, ImageRecord>();
      for (const r of recs) if (digestHex(r.id).startsWith(s)) ids.set(r.id, ids.get(r.id) ?? r);
      if (ids.size === 1) return [...ids.values()][0]!;
      if (ids.size > 1) throw new ContentError('INVALID_REFERENCE', `image id prefix ${s} is ambiguous (${ids.size} images)`);
    }
    throw new ContentError('NOT_FOUND', `image ${nameOrId} not found`);
  }

  /** Every record with the same ID as `r` (all names of one image). */
  async recordsFor(id: Digest): Promise<ImageRecord[]> {
    return (await this.list()).filter((x) => x.id === id);
  }

  /** The image whose manifest `desc` is in the store. */
  image(desc: Descriptor): Promise<Image> {
    return Promise.resolve(imageFromContent(this.content, desc));
  }

  /** The index whose manifest `desc` is in the store. */
  index(desc: Descriptor): Promise<ImageIndex> {
    return Promise.resolve(indexFromContent(this.content, desc));
  }

  /**
   * Resolves `nameOrId` and returns its image; an index is followed to the manifest for
   * `platform` (default: this host's), recursively.
   */
  async imageFor(nameOrId: string, platform: Platform = hostPlatform()): Promise<{ record: ImageRecord; image: Image }> {
    const record = await this.resolve(nameOrId);
    const desc = await this.platformManifest(record.descriptor, platform, nameOrId);
    return { record, image: imageFromContent(this.content, desc) };
  }

  /** Follows indexes from `desc` to the image manifest for `platform`. */
  async platformManifest(desc: Descriptor, platform: Platform, what: string = desc.digest): Promise<Descriptor> {
    let cur = desc;
    for (let depth = 0; depth < 8; depth++) {
      if (isImageManifest(cur.mediaType)) return cur;
      if (!isIndex(cur.mediaType)) throw new ContentError('UNSUPPORTED_MEDIA_TYPE', `image ${what}: ${cur.mediaType} is not an image`);
      const children = await childDescriptors(this.content, cur);
      const next =
        children.find((c) => isImageManifest(c.mediaType) && platformMatches(platform, c.platform)) ??
        children.find((c) => isIndex(c.mediaType) && platformMatches(platform, c.platform)) ??
        (children.length === 1 ? children[0] : undefined);
      if (!next) throw new ContentError('NOT_FOUND', `image ${what} has no manifest for ${platform.os}/${platform.architecture}`);
      cur = next;
    }
    throw new ContentError('INVALID_MANIFEST', `image ${what}: indexes nested too deep`);
  }

  /**
   * Points `name` at `desc` (which must be in the store). A name that pointed elsewhere moves;
   * the image it left keeps an untagged record when no other name refers to it (a dangling
   * image, like docker's `<none>`).
   */
  async tag(name: string, desc: Descriptor): Promise<void> {
    const full = formatReference(parseReference(name));
    if (parseReference(name).digest) throw new ContentError('INVALID_REFERENCE', `cannot tag with a digest reference ${name}`);
    if (!(await this.content.has(desc.digest))) throw new ContentError('NOT_FOUND', `tagging ${full}: manifest ${desc.digest} not in the store`);
    const id = await this.#idOf(desc);
    const created = new Date().toISOString();
    await this.#update((db) => {
      const old = db.images.find((x) => x.name === full);
      db.images = db.images.filter((x) => x.name !== full && !(x.name === '' && x.descriptor.digest === desc.digest));
      db.images.push({ name: full, descriptor: stripDescriptor(desc), created, id });
      // Same ID (e.g. the same config under a docker instead of an OCI manifest): nothing dangles.
      if (old && old.descriptor.digest !== desc.digest && old.id !== id && !db.images.some((x) => x.descriptor.digest === old.descriptor.digest || x.id === old.id)) {
        db.images.push({ ...old, name: '' });
      }
    });
  }

  /** Adds an untagged record for `desc` unless some record already refers to it. */
  async addUntagged(desc: Descriptor): Promise<ImageRecord> {
    const id = await this.#idOf(desc);
    let rec: ImageRecord | undefined;
    await this.#update((db) => {
      rec = db.images.find((x) => x.descriptor.digest === desc.digest);
      if (!rec) {
        rec = { name: '', descriptor: stripDescriptor(desc), created: new Date().toISOString(), id };
        db.images.push(rec);
      }
    });
    return rec!;
  }

  /** Removes the name `name` (normalised). Throws NOT_FOUND when it is not there. Blobs stay until gc. */
  async untag(name: string): Promise<void> {
    const full = formatReference(parseReference(name));
    await this.#update((db) => {
      const n = db.images.length;
      db.images = db.images.filter((x) => x.name !== full);
      if (db.images.length === n) throw new ContentError('NOT_FOUND', `image ${name} not found`);
    });
  }

  /** Removes every record (names and untagged) whose ID is `id`; returns the removed records. */
  async removeId(id: Digest): Promise<ImageRecord[]> {
    let removed: ImageRecord[] = [];
    await this.#update((db) => {
      removed = db.images.filter((x) => x.id === id);
      db.images = db.images.filter((x) => x.id !== id);
    });
    return removed;
  }

  /**
   * Writes an in-memory Image: layers not yet in the store are streamed in (each verified
   * against its descriptor), then the config, then the manifest. Returns the manifest descriptor.
   */
  async putImage(img: Image): Promise<Descriptor> {
    for (const layer of await img.layers()) {
      const d = await layer.descriptor();
      if (await this.content.has(d.digest)) continue;
      await this.content.put(await layer.compressed(), { mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
    const m = await img.manifest();
    await this.content.put(await img.rawConfig(), { mediaType: m.config.mediaType, digest: m.config.digest, size: m.config.size });
    const raw = await img.rawManifest();
    return this.content.put(raw, { mediaType: await img.mediaType(), digest: await img.digest(), size: raw.length });
  }

  /** Copies the graph under `desc` from another content store (verified, children first). */
  async putGraph(src: ContentStore, desc: Descriptor): Promise<Descriptor> {
    await copyGraph(src, this.content, desc);
    return stripDescriptor(desc);
  }

  /** Every digest reachable from `desc` that is in the store (for targeted gc after removal). */
  async graphDigests(desc: Descriptor): Promise<Set<string>> {
    const seen = new Set<string>();
    await walkGraph(this.content, desc, () => {}, { seen, onMissing: () => {} });
    return seen;
  }

  /**
   * Takes a lease (`<root>/leases/<pid>-<random>`): while it is held by a live process, gc spares
   * every blob written since it was taken. Writers (import, load, pull, build) hold one from
   * their first blob write until their result is tagged or recorded as a gc root.
   */
  async lease(): Promise<{ release(): Promise<void> }> {
    const dir = join(this.root, LEASES_DIR);
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    await writeFile(path, JSON.stringify({ pid: process.pid, started: Date.now() }));
    return { release: () => unlink(path).catch(() => {}) };
  }

  /** Runs `fn` under a {@link lease}. */
  async withLease<T>(fn: () => Promise<T>): Promise<T> {
    const l = await this.lease();
    try {
      return await fn();
    } finally {
      await l.release();
    }
  }

  async #oldestLiveLease(): Promise<number | undefined> {
    const dir = join(this.root, LEASES_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    let oldest: number | undefined;
    for (const n of names) {
      const p = join(dir, n);
      try {
        const v = JSON.parse(await readFile(p, 'utf8')) as { pid?: number; started?: number };
        if (typeof v.pid !== 'number' || typeof v.started !== 'number' || !processAlive(v.pid)) {
          await unlink(p).catch(() => {});
          continue;
        }
        oldest = oldest === undefined ? v.started : Math.min(oldest, v.started);
      } catch {
        // Being written (empty) right now: count it as live from now.
        oldest = oldest === undefined ? Date.now() : Math.min(oldest, Date.now());
      }
    }
    return oldest;
  }

  /** The digests named by files under `<root>/gc-roots/` (see the class comment). */
  async gcRoots(): Promise<Digest[]> {
    const dir = join(this.root, GC_ROOTS_DIR);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new ContentError('IO', `listing ${dir}`, { cause: e });
    }
    const out: Digest[] = [];
    for (const n of names) {
      if (n.startsWith('.')) continue;
      const text = await readFile(join(dir, n), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        const t = line.replace(/#.*/, '').trim();
        if (!t) continue;
        if (isDigest(t)) out.push(t as Digest);
        else this.#logger.warn(`gc root file ${n}: ignoring ${JSON.stringify(t)}`);
      }
    }
    return out;
  }

  /**
   * Garbage collection (mark and sweep) under the images lock: marks everything reachable from
   * every record, `extraRoots` and `<root>/gc-roots/*` through indexes, manifests, configs and
   * layers; deletes every other blob and stale temp files. `dryRun` only reports.
   * `graceMs` spares blobs modified more recently than that (writers not yet tagged).
   * `only` limits deletion to those digests (e.g. the blobs of images just removed).
   */
  async gc(opts: { extraRoots?: Iterable<Digest>; dryRun?: boolean; graceMs?: number; only?: ReadonlySet<string> } = {}): Promise<{ removed: Digest[]; bytes: number }> {
    return withLock(join(this.root, 'images.lock'), async () => {
      const marked = new Set<string>();
      const roots: Descriptor[] = (await this.#read()).images.map((r) => r.descriptor);
      for (const d of [...(opts.extraRoots ?? []), ...(await this.gcRoots())]) {
        const desc = await sniffDescriptor(this.content, d);
        if (desc) roots.push(desc);
        else marked.add(d);
      }
      for (const r of roots) {
        await walkGraph(this.content, r, () => {}, { seen: marked, onMissing: () => {} });
      }
      const removed: Digest[] = [];
      let bytes = 0;
      // Blobs written since the oldest live lease began belong to a writer that has not tagged
      // its result yet: spare them (as well as anything younger than graceMs).
      const leaseStart = await this.#oldestLiveLease();
      const grace = opts.graceMs ?? 0;
      for await (const d of this.content.list()) {
        if (marked.has(d)) continue;
        if (opts.only && !opts.only.has(d)) continue;
        if (grace > 0 || leaseStart !== undefined) {
          const st = await stat(this.content.path(d)).catch(() => undefined);
          if (st && Date.now() - st.mtimeMs < grace) continue;
          if (st && leaseStart !== undefined && st.mtimeMs >= leaseStart - 2000) continue;
        }
        const st = await this.content.stat(d);
        removed.push(d);
        bytes += st?.size ?? 0;
        if (!opts.dryRun) await this.content.delete(d);
      }
      if (!opts.dryRun) await this.content.cleanTemp();
      this.#logger.debug(`gc: removed ${removed.length} blobs, ${bytes} bytes`);
      return { removed, bytes };
    });
  }

  /**
   * Verifies every stored blob (digest and size, streaming) and every record's graph: reports
   * corrupt blobs and blobs that a record refers to but the store lacks. Removes stale temp files.
   */
  async fsck(): Promise<{ checked: number; bad: { digest: Digest; problem: string }[] }> {
    const bad: { digest: Digest; problem: string }[] = [];
    let checked = 0;
    for await (const d of this.content.list()) {
      checked++;
      try {
        const s = await this.content.open(d);
        for await (const _ of s) {
          /* drain: the stream verifies */
        }
      } catch (e) {
        bad.push({ digest: d, problem: e instanceof Error ? e.message : String(e) });
      }
    }
    const corrupt = new Set(bad.map((b) => b.digest));
    for (const r of await this.list()) {
      const label = r.name || `untagged ${digestHex(r.id).slice(0, 12)}`;
      try {
        await walkGraph(
          this.content,
          r.descriptor,
          () => {},
          {
            onMissing: (d, parent) =>
              void bad.push({ digest: d.digest, problem: `missing, referenced by ${parent ? `${parent.digest} of ` : ''}image ${label}` }),
          },
        );
      } catch (e) {
        if (!corrupt.has(r.descriptor.digest)) bad.push({ digest: r.descriptor.digest, problem: `image ${label}: ${e instanceof Error ? e.message : String(e)}` });
      }
    }
    await this.content.cleanTemp();
    return { checked, bad };
  }

  async #idOf(desc: Descriptor): Promise<Digest> {
    if (!isImageManifest(desc.mediaType)) return desc.digest;
    const raw = await this.content.read(desc.digest, MAX_MANIFEST_BYTES);
    const m = JSON.parse(raw.toString('utf8')) as ImageManifest;
    if (!m.config?.digest || !isDigest(m.config.digest)) throw new ContentError('INVALID_MANIFEST', `manifest ${desc.digest}: no config digest`);
    return m.config.digest;
  }

  async #read(): Promise<Db> {
    let text: string;
    try {
      text = await readFile(this.#dbPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 1, images: [] };
      throw new ContentError('IO', `reading ${this.#dbPath}`, { cause: e });
    }
    try {
      const db = JSON.parse(text) as Db;
      if (!Array.isArray(db.images)) throw new Error('no images array');
      return db;
    } catch (e) {
      throw new ContentError('INVALID_MANIFEST', `parsing ${this.#dbPath}`, { cause: e });
    }
  }

  async #update(fn: (db: Db) => void): Promise<void> {
    await withLock(join(this.root, 'images.lock'), async () => {
      const db = await this.#read();
      fn(db);
      const tmp = join(this.root, `.images.json.${process.pid}.${randomBytes(4).toString('hex')}`);
      const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      try {
        await fh.writeFile(`${JSON.stringify(db, null, 2)}\n`);
        await fh.sync();
        await fh.close();
        await rename(tmp, this.#dbPath);
      } catch (e) {
        await fh.close().catch(() => {});
        await unlink(tmp).catch(() => {});
        throw new ContentError('IO', `writing ${this.#dbPath}`, { cause: e });
      }
      await fsyncDir(this.root);
    });
  }
}

function stripDescriptor(d: Descriptor): Descriptor {
  const out: { -readonly [K in keyof Descriptor]?: Descriptor[K] } = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform) out.platform = d.platform;
  if (d.artifactType) out.artifactType = d.artifactType;
  return out as Descriptor;
}

function sameRepository(name: string, registry: string, repository: string): boolean {
  try {
    const r = parseReference(name);
    return r.registry === registry && r.repository === repository;
  } catch {
    return false;
  }
}

/** The 12-hex short form of an ID or digest, as `docker images` prints it. */
export function shortId(d: Digest): string {
  return digestHex(d).slice(0, 12);
}

/** Platforms named by an index's child descriptors (for listings). */
export function indexPlatforms(m: IndexManifest): Platform[] {
  return m.manifests.flatMap((d) => (d.platform ? [d.platform] : []));
}
