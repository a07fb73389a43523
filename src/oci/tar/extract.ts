import { constants as fsConstants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink, unlink, utimes } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ContentError, TsbuildError } from '../../util/errors.js';
import { lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO, SyscallError } from '../../util/libc.js';
import type { TarEntry } from './entry.js';
import { OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './entry.js';
import { readTar } from './reader.js';

/** Options of {@link extractLayer}. */
export interface ExtractOptions {
  /**
   * `'apply'` (default): OCI whiteouts delete what lower layers put in `target` and opaque markers
   * empty a directory of lower content. `'overlay'`: they are written in overlayfs form instead
   * (char device 0/0, `trusted.overlay.opaque=y`), for a layer directory used as an overlay lowerdir.
   */
  whiteouts?: 'apply' | 'overlay';
  /** Leave files owned by the caller instead of the uid/gid in the tar (rootless unpacking). */
  ignoreOwnership?: boolean;
  /**
   * Own every entry by this uid/gid instead of the tar's (Dockerfile `ADD --chown` of an archive,
   * as BuildKit since v0.23); directories the tar only implies stay 0:0, as there.
   */
  owner?: { uid: number; gid: number };
  /**
   * A hardlink entry's own owner, mode, mtime and xattrs are applied to the inode it shares (the
   * last entry wins), as Docker's archive package does (Dockerfile ADD); default: the target's stay.
   */
  hardlinkMetadata?: boolean;
  signal?: AbortSignal;
}

/** Symlinks followed while resolving one path inside the target (Linux MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

function unsafe(msg: string): ContentError {
  return new ContentError('UNSAFE_PATH', msg);
}

function code(e: unknown): string | undefined {
  return (e as { code?: unknown })?.code as string | undefined;
}

/**
 * The components of an archive path. A leading `/` is dropped (entries are relative to the
 * target, as in Docker); `.` and empty components are ignored; any `..` is rejected.
 */
function components(p: string, what: string): string[] {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw unsafe(`${what} ${JSON.stringify(p)} contains '..'`);
  return parts;
}

interface Ctx {
  root: string;
  opts: ExtractOptions;
  /** Resolved directory for an already-checked archive directory path (key: joined components). */
  dirs: Map<string, string>;
  /** Paths this layer put in place, with all their ancestors: opaque markers keep them. */
  touched: Set<string>;
  /** Directory metadata applied at the end, after their content. */
  deferred: { abs: string; mode: number; mtime: number }[];
  isRoot: boolean;
}

/**
 * Resolves archive directory components to a real directory inside `ctx.root`, following symlinks
 * as if `root` were `/` (a symlink can never lead out: `..` stops at the root and absolute targets
 * restart at it). Missing directories are created (mode 0755) when `create` is set. Throws
 * INVALID_TAR when a component is not a directory.
 */
async function resolveDir(ctx: Ctx, parts: readonly string[], create: boolean): Promise<string> {
  const key = parts.join('/');
  const hit = ctx.dirs.get(key);
  if (hit !== undefined) return hit;
  let cur: string[] = [];
  const pending = [...parts];
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const p = `${ctx.root}/${[...cur, c].join('/')}`;
    let st;
    try {
      st = await lstat(p);
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
      if (!create) throw new ContentError('INVALID_TAR', `${[...cur, c].join('/')} does not exist in the target`);
      await mkdir(p, 0o755);
      touch(ctx, p);
      cur.push(c);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw unsafe(`too many levels of symbolic links resolving ${key}`);
      const t = await readlink(p);
      if (t.startsWith('/')) cur = [];
      pending.unshift(...t.split('/'));
      continue;
    }
    if (!st.isDirectory()) throw new ContentError('INVALID_TAR', `${[...cur, c].join('/')} is not a directory`);
    cur.push(c);
  }
  const abs = cur.length > 0 ? `${ctx.root}/${cur.join('/')}` : ctx.root;
  ctx.dirs.set(key, abs);
  return abs;
}

function touch(ctx: Ctx, abs: string): void {
  let p = abs;
  while (p.length > ctx.root.length && !ctx.touched.has(p)) {
    ctx.touched.add(p);
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

/** Removes whatever is at `abs` (not following symlinks); no error when nothing is there. */
async function remove(ctx: Ctx, abs: string): Promise<void> {
  let st;
  try {
    st = await lstat(abs);
  } catch (e) {
    if (code(e) === 'ENOENT') return;
    throw e;
  }
  if (st.isDirectory()) {
    await rm(abs, { recursive: true, force: true });
    ctx.dirs.clear(); // cached resolutions may have gone through it
  } else {
    await unlink(abs);
    if (st.isSymbolicLink()) ctx.dirs.clear();
  }
}

/** Removes everything under `dir` that this layer did not put there (opaque directories). */
async function clearLower(ctx: Ctx, dir: string): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const abs = `${dir}/${ent.name}`;
    if (!ctx.touched.has(abs)) await remove(ctx, abs);
    else if (ent.isDirectory()) await clearLower(ctx, abs);
  }
}

/** fs times: Node turns negative numbers into "now", so pre-1970 times go in as Dates. */
function fsTime(t: number): number | Date {
  return t >= 0 ? t : new Date(t * 1000);
}

async function setXattrs(abs: string, e: TarEntry): Promise<void> {
  if (!e.xattrs) return;
  for (const [name, value] of e.xattrs) {
    try {
      lsetxattr(abs, name, value);
    } catch (err) {
      const c = code(err);
      // The filesystem has no xattrs, or (user.* on a symlink) the kernel forbids this one.
      if (c === 'ENOTSUP' || (c === 'EPERM' && e.type === 'symlink')) continue;
      throw err;
    }
  }
}

async function applyMeta(ctx: Ctx, abs: string, e: TarEntry): Promise<void> {
  if (!ctx.opts.ignoreOwnership) await lchown(abs, ctx.opts.owner?.uid ?? e.uid, ctx.opts.owner?.gid ?? e.gid);
  if (e.type === 'dir') {
    // Mode and mtime after the directory's content: a read-only or dated directory stays so.
    ctx.deferred.push({ abs, mode: e.mode, mtime: e.mtime });
    await setXattrs(abs, e);
    return;
  }
  if (e.type !== 'symlink') await chmod(abs, e.mode); // after chown, which clears setuid/setgid
  await setXattrs(abs, e); // after chown, which clears security.capability
  await lutimes(abs, fsTime(e.mtime), fsTime(e.mtime));
}

async function writeFile(abs: string, e: TarEntry, body: Readable | Buffer): Promise<void> {
  const fh = await open(abs, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  try {
    if (Buffer.isBuffer(body)) {
      let off = 0;
      while (off < body.length) off += (await fh.write(body, off, body.length - off)).bytesWritten;
      return;
    }
    let n = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      n += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
        off += bytesWritten;
      }
    }
    if (n !== e.size) throw new ContentError('INVALID_TAR', `tar entry ${e.path}: body has ${n} of ${e.size} bytes`);
  } finally {
    await fh.close();
  }
}

/** Regular files up to this size are buffered and written concurrently with later entries. */
const SMALL_FILE = 1 << 20;
/**
 * Concurrent small-file writes. NOTE: concurrency hides filesystem latency (openat alone took
 * ~170 µs per file on a busy ext4 here); a synchronous variant was not reliably faster.
 */
const WRITE_CONCURRENCY = 16;

/** Bounded concurrent small-file writes; every other entry waits for all of them (a barrier). */
class WriteQueue {
  readonly #pending = new Map<string, Promise<void>>();
  #error: Error | undefined;

  get size(): number {
    return this.#pending.size;
  }

  has(abs: string): boolean {
    return this.#pending.has(abs);
  }

  /** Throws the first failure of a finished write, naming its entry. */
  check(): void {
    if (this.#error) throw this.#error;
  }

  #fail(e: unknown, path: string): void {
    if (this.#error) return;
    this.#error =
      e instanceof ContentError ? e : new ContentError('IO', `extracting ${path}`, { cause: e });
  }

  async add(abs: string, path: string, task: () => Promise<void>): Promise<void> {
    const prev = this.#pending.get(abs);
    if (prev) await prev;
    while (this.#pending.size >= WRITE_CONCURRENCY) await Promise.race(this.#pending.values());
    this.check();
    const p = task().then(
      () => {
        this.#pending.delete(abs);
      },
      (e: unknown) => {
        this.#pending.delete(abs);
        this.#fail(e, path);
      },
    );
    this.#pending.set(abs, p);
  }

  async barrier(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending.values());
    this.check();
  }

  /** Waits for everything in flight, ignoring failures (before reporting another error). */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled(this.#pending.values());
  }
}

async function readBody(body: Readable, e: TarEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    parts.push(c);
    n += c.length;
  }
  if (n !== e.size) throw new ContentError('INVALID_TAR', `tar entry ${e.path}: body has ${n} of ${e.size} bytes`);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}

async function extractEntry(ctx: Ctx, e: TarEntry, body: Readable, q: WriteQueue): Promise<void> {
  const parts = components(e.path, 'tar entry');
  if (parts.length === 0) return; // the root itself: its metadata belongs to the caller
  const name = parts[parts.length - 1]!;
  const parentParts = parts.slice(0, -1);

  // === small regular files: written concurrently (their parent is resolved here, in order)
  if (e.type === 'file' && e.size <= SMALL_FILE && !name.startsWith(WHITEOUT_PREFIX)) {
    if (q.has(`${ctx.root}/${parentParts.join('/')}`)) await q.barrier();
    const parent = await resolveDir(ctx, parentParts, true);
    const abs = `${parent}/${name}`;
    const data = await readBody(body, e);
    touch(ctx, abs);
    await q.add(abs, e.path, async () => {
      await remove(ctx, abs);
      await writeFile(abs, e, data);
      await applyMeta(ctx, abs, e);
    });
    return;
  }
  await q.barrier();

  // === whiteouts
  if (name.startsWith(WHITEOUT_PREFIX)) {
    const parent = await resolveDir(ctx, parentParts, true);
    if (name === WHITEOUT_OPAQUE) {
      if (ctx.opts.whiteouts === 'overlay') {
        lsetxattr(parent, OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      } else {
        await clearLower(ctx, parent);
      }
      return;
    }
    if (name.startsWith(WHITEOUT_META_PREFIX)) return; // AUFS metadata (.wh..wh.plnk, ...)
    const victim = name.slice(WHITEOUT_PREFIX.length);
    if (victim === '' || victim === '.' || victim === '..') throw unsafe(`whiteout ${JSON.stringify(e.path)} names no file`);
    const abs = `${parent}/${victim}`;
    await remove(ctx, abs);
    if (ctx.opts.whiteouts === 'overlay') {
      mknod(abs, S_IFCHR, 0, 0, 0);
      await lutimes(abs, fsTime(e.mtime), fsTime(e.mtime));
      touch(ctx, abs);
    }
    return;
  }

  const parent = await resolveDir(ctx, parentParts, true);
  const abs = `${parent}/${name}`;

  // === replace what is there (a directory survives only if a directory replaces it)
  let existing;
  try {
    existing = await lstat(abs);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
  if (existing && !(existing.isDirectory() && e.type === 'dir')) await remove(ctx, abs);

  // === create
  switch (e.type) {
    case 'dir':
      if (!existing?.isDirectory()) await mkdir(abs, 0o700);
      ctx.dirs.set(parts.join('/'), abs);
      break;
    case 'file':
      await writeFile(abs, e, body);
      break;
    case 'symlink':
      await symlink(e.linkname ?? '', abs);
      ctx.dirs.clear();
      break;
    case 'hardlink': {
      const tparts = components(e.linkname ?? '', `hardlink target of ${e.path}`);
      if (tparts.length === 0) throw unsafe(`hardlink ${e.path} points at the root`);
      const tparent = await resolveDir(ctx, tparts.slice(0, -1), false);
      const target = `${tparent}/${tparts[tparts.length - 1]!}`;
      let tst;
      try {
        tst = await lstat(target);
      } catch {
        throw new ContentError('INVALID_TAR', `hardlink ${e.path}: target ${e.linkname} does not exist`);
      }
      if (tst.isDirectory()) throw new ContentError('INVALID_TAR', `hardlink ${e.path}: target ${e.linkname} is a directory`);
      await link(target, abs);
      touch(ctx, abs);
      if (ctx.opts.hardlinkMetadata) {
        if (!tst.isSymbolicLink()) await applyMeta(ctx, abs, e);
        else if (!ctx.opts.ignoreOwnership) await lchown(abs, ctx.opts.owner?.uid ?? e.uid, ctx.opts.owner?.gid ?? e.gid);
      }
      return; // otherwise a hardlink shares its target's inode and metadata
    }
    case 'char':
    case 'block':
    case 'fifo':
      mknod(abs, e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO, e.mode, e.devmajor ?? 0, e.devminor ?? 0);
      break;
  }
  touch(ctx, abs);
  await applyMeta(ctx, abs, e);
}

/**
 * Unpacks a layer tar into the existing (or created) directory `target`, safely: no entry ever
 * writes outside `target`. Paths with `..` are rejected (UNSAFE_PATH); absolute paths are taken
 * relative to `target`; symlinks met while resolving parent directories are followed as if
 * `target` were the root, so they cannot lead out; the final component is never followed (an
 * existing file, symlink or, unless a directory replaces it, directory is removed first);
 * hardlinks may only point at existing non-directories inside `target`.
 *
 * Ownership (unless `ignoreOwnership`), modes including setuid/setgid/sticky, xattrs (byte-exact,
 * after chown so `security.capability` survives), device nodes and fifos are restored; mtimes
 * too, for directories after their content. Whiteouts are applied or converted per
 * `opts.whiteouts`. Errors: ContentError UNSAFE_PATH, INVALID_TAR, IO (naming the entry), or the
 * signal's reason when aborted. On error, what was extracted so far stays in `target`.
 */
export async function extractLayer(tar: Readable, target: string, opts?: ExtractOptions): Promise<void> {
  const o = opts ?? {};
  const root = target.replace(/\/+$/, '') || '/';
  await mkdir(root, { recursive: true });
  const ctx: Ctx = { root, opts: o, dirs: new Map(), touched: new Set(), deferred: [], isRoot: process.getuid?.() === 0 };
  ctx.dirs.set('', root);
  let current: TarEntry | undefined;
  const q = new WriteQueue();
  try {
    for await (const { entry, body } of readTar(tar)) {
      o.signal?.throwIfAborted();
      q.check();
      current = entry;
      await extractEntry(ctx, entry, body, q);
    }
    current = undefined;
    await q.barrier();
    // === directory modes and mtimes, deepest first
    for (let i = ctx.deferred.length - 1; i >= 0; i--) {
      const d = ctx.deferred[i]!;
      await chmod(d.abs, d.mode);
      await utimes(d.abs, fsTime(d.mtime), fsTime(d.mtime));
    }
  } catch (err) {
    await q.settle();
    if (o.signal?.aborted && err === o.signal.reason) throw err;
    if (err instanceof ContentError) throw err;
    const what = current ? `extracting ${current.path}` : `extracting layer into ${root}`;
    if (err instanceof SyscallError || !(err instanceof TsbuildError)) throw new ContentError('IO', what, { cause: err });
    throw err;
  }
}
