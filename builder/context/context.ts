/**
 * The build context: a directory (or an unpacked tar stream) filtered by
 * .dockerignore, COPY/ADD source selection with Docker's wildcard rules, and
 * content hashes of the selected files for cache keys.
 */
import { resolveInRoot } from '../exec/root-path.js';
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync, type BigIntStats, type Stats } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, type Gunzip } from 'node:zlib';
import type { Digest } from '../../src/oci/digest.js';
import { extractLayer } from '../../src/oci/tar/extract.js';
import { DockerfileError } from '../dockerfile/errors.js';
import { parseDockerignore, PatternMatcher, type MatchInfo } from './dockerignore.js';
import { goClean, goMatch, hasMeta } from './go-path.js';
import { ContentHashCache, statCacheKey } from './hash-cache.js';

/** A file system object of the context. Paths are relative to the context root, `/`-separated, never `.`. */
export interface ContextEntry {
  readonly path: string;
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission and special bits (st_mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly linkname?: string;
}

/** The entries one COPY/ADD source resolved to. */
export interface SelectedSource {
  /** The source as written (after variable expansion). */
  readonly source: string;
  /** Top-level matches of the source (one unless it had wildcards). */
  readonly roots: readonly ContextEntry[];
  /** Every entry copied: the roots and, for directories, everything below them that is not ignored/excluded. Sorted by path. */
  readonly entries: readonly ContextEntry[];
}

/** Options of {@link BuildContext.fromDirectory}. */
export interface ContextOptions {
  /**
   * Path of the Dockerfile, relative to the context root or absolute. When
   * `<Dockerfile>.dockerignore` exists next to it, it replaces the root
   * `.dockerignore` (Docker's precedence).
   */
  readonly dockerfile?: string;
  /** Explicit ignore patterns; when given, no ignore file is read. */
  readonly ignorePatterns?: readonly string[];
  /**
   * Directory of the persistent content hash cache (hash-cache.ts): files whose lstat is
   * unchanged since an earlier build are not read again. Directory contexts only.
   */
  readonly hashCacheDir?: string;
}

/** Options of {@link BuildContext.select}. */
export interface SelectOptions {
  /** COPY/ADD `--exclude` patterns (patternmatcher syntax), matched against paths relative to the context root and to each matched source. */
  readonly excludes?: readonly string[];
}

function toEntry(path: string, st: Stats | BigIntStats, linkname?: string): ContextEntry {
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  const e: ContextEntry = { path, type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: type === 'file' ? Number(st.size) : 0 };
  return linkname !== undefined ? { ...e, linkname } : e;
}

/**
 * A build context rooted at a directory. Only the files that COPY/ADD
 * sources reference are read; ignored paths are invisible to {@link select}.
 */
export class BuildContext {
  /** Content hash cache keys of the files examined so far, by path (hash-cache.ts). */
  private readonly statKeys = new Map<string, string>();

  private constructor(
    /** Directory holding the context. */
    readonly root: string,
    /** The effective ignore patterns. */
    readonly ignorePatterns: readonly string[],
    /** Which ignore file was used ('' when none). */
    readonly ignoreFile: string,
    private readonly matcher: PatternMatcher | undefined,
    private readonly cleanupDir?: string,
    private readonly hashCache?: ContentHashCache,
  ) {}

  /** Opens a directory context, reading `<Dockerfile>.dockerignore` or `.dockerignore`. */
  static async fromDirectory(root: string, opts: ContextOptions = {}): Promise<BuildContext> {
    return BuildContext.open(root, opts);
  }

  /**
   * NOTE: entries named `.wh.*` are unpacked through the layer extractor in
   * overlay form, so a context tar should not contain such names.
   * Unpacks a context tar stream (`tsbuild build -`; plain or gzip) into a
   * private temp directory under `tmpParent` (default the OS temp dir). The
   * caller MUST call {@link close} to remove it.
   */
  static async fromTar(stream: Readable, opts: ContextOptions & { tmpParent?: string } = {}): Promise<BuildContext> {
    const dir = await mkdtemp(join(opts.tmpParent ?? tmpdir(), 'tsbuild-context-'));
    try {
      const src = autoDecompress();
      stream.on('error', (e) => src.destroy(e));
      stream.pipe(src);
      await extractLayer(src, dir, { whiteouts: 'overlay', ignoreOwnership: process.getuid?.() !== 0 });
      return await BuildContext.open(dir, opts, dir);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private static async open(root: string, opts: ContextOptions, cleanupDir?: string): Promise<BuildContext> {
    let patterns: string[] = [];
    let ignoreFile = '';
    if (opts.ignorePatterns) {
      patterns = [...opts.ignorePatterns];
    } else {
      const candidates: string[] = [];
      if (opts.dockerfile) {
        const df = posix.isAbsolute(opts.dockerfile) ? opts.dockerfile : join(root, opts.dockerfile);
        candidates.push(df + '.dockerignore');
      }
      candidates.push(join(root, '.dockerignore'));
      for (const c of candidates) {
        let text: string;
        try {
          text = await readFile(c, 'utf8');
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        }
        patterns = parseDockerignore(text);
        ignoreFile = c;
        break;
      }
    }
    const matcher = patterns.length ? new PatternMatcher(patterns) : undefined;
    const hashCache = opts.hashCacheDir && !cleanupDir ? await ContentHashCache.open(opts.hashCacheDir, root) : undefined;
    return new BuildContext(root, patterns, ignoreFile, matcher, cleanupDir, hashCache);
  }

  /** Removes the temp directory of a tar context; a no-op for directory contexts. */
  async close(): Promise<void> {
    if (this.cleanupDir) await rm(this.cleanupDir, { recursive: true, force: true });
  }

  /** True when `.dockerignore` hides `path` (relative, `/`-separated). */
  isIgnored(path: string): boolean {
    const p = goClean(path).replace(/^\/+/, '');
    if (!this.matcher || p === '.' || p === '') return false;
    return this.matcher.matchesOrParentMatches(p);
  }

  /** Lstat of a context path, or undefined when missing or ignored. */
  async stat(path: string): Promise<ContextEntry | undefined> {
    const asked = goClean(path).replace(/^\/+/, '');
    if (asked === '.' || asked === '') return toEntry('', await lstat(this.root));
    if (this.isIgnored(asked)) return undefined;
    // Symlinks in the parent components are followed inside the context, as BuildKit's scoped
    // resolution does (an absolute target is taken from the context root, `..` stops there):
    // `dirlink/file` with dirlink -> /etc never reads a host path. The entry gets the resolved path.
    const p = (await resolveInRoot(this.root, '/' + asked, false)).path.replace(/^\/+/, '');
    if (p === '') return toEntry('', await lstat(this.root));
    if (p !== asked && this.isIgnored(p)) return undefined;
    try {
      const st = await lstat(join(this.root, p), { bigint: true });
      this.noteStat(p, st);
      return toEntry(p, st, st.isSymbolicLink() ? await readlink(join(this.root, p)) : undefined);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  /** A new stream of a file's content; the caller owns and must consume or destroy it. */
  openFile(path: string): Readable {
    return createReadStream(join(this.root, goClean(path).replace(/^\/+/, '')));
  }

  /**
   * Resolves COPY/ADD sources (already variable-expanded): a leading `/` and
   * `..` stay inside the context; wildcards are matched per path component
   * with Go's filepath.Match (`**` as a component matches any depth);
   * directories bring their whole non-ignored subtree. A source that matches
   * nothing is an error, as in buildkit (`"/x": not found`).
   */
  async select(sources: readonly string[], opts: SelectOptions = {}): Promise<SelectedSource[]> {
    const ex = opts.excludes?.length ? new PatternMatcher(opts.excludes) : undefined;
    const out: SelectedSource[] = [];
    for (const source of sources) {
      const clean = goClean('/' + source).slice(1); // confine to the context
      const roots = hasMeta(clean) ? await this.glob(clean) : await this.single(clean);
      const visible = roots.filter((r) => !ex || r.path === '' || !ex.matchesOrParentMatches(r.path));
      if (visible.length === 0) {
        throw new DockerfileError('INVALID_INSTRUCTION', `${JSON.stringify('/' + clean)}: not found`, { text: source });
      }
      const entries = new Map<string, ContextEntry>();
      for (const r of visible) {
        entries.set(r.path, r);
        if (r.type === 'dir') await this.walk(r.path, entries, ex);
      }
      out.push({ source, roots: visible, entries: [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) });
    }
    return out;
  }

  private async single(p: string): Promise<ContextEntry[]> {
    const e = await this.stat(p);
    return e ? [e] : [];
  }

  private async glob(pattern: string): Promise<ContextEntry[]> {
    const parts = pattern.split('/');
    const found = new Map<string, ContextEntry>();
    const step = async (dir: string, i: number): Promise<void> => {
      if (i === parts.length) {
        const e = await this.stat(dir);
        if (e) found.set(e.path, e);
        return;
      }
      const part = parts[i]!;
      if (!hasMeta(part)) {
        const next = dir ? `${dir}/${part}` : part;
        if (i + 1 < parts.length) {
          const e = await this.stat(next);
          if (!e || e.type !== 'dir') return;
        }
        await step(next, i + 1);
        return;
      }
      if (part === '**') {
        await step(dir, i + 1); // zero directories
      }
      for (const name of await this.list(dir)) {
        const child = dir ? `${dir}/${name}` : name;
        if (this.isIgnored(child)) continue;
        if (part === '**') {
          const st = await lstat(join(this.root, child));
          if (st.isDirectory()) await step(child, i);
          if (i + 1 === parts.length) {
            const e = await this.stat(child);
            if (e) found.set(e.path, e);
          }
          continue;
        }
        if (!goMatch(part, name)) continue;
        if (i + 1 < parts.length) {
          const st = await lstat(join(this.root, child));
          if (!st.isDirectory()) continue;
        }
        await step(child, i + 1);
      }
    };
    await step('', 0);
    return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(join(this.root, dir))).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' || (e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  private noteStat(path: string, st: BigIntStats): void {
    if (!this.hashCache || !st.isFile()) return;
    const key = statCacheKey(st);
    if (key) this.statKeys.set(path, key);
    else this.statKeys.delete(path);
  }

  private listSync(dir: string): string[] {
    try {
      return readdirSync(join(this.root, dir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' || (e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  /**
   * Adds the subtree of `dir` (exclusive) to `out`, honouring .dockerignore with parent results like fsutil's walker.
   * Synchronous file system calls: thousands of tiny metadata calls cost more through the thread pool than they block.
   */
  private async walk(dir: string, out: Map<string, ContextEntry>, ex: PatternMatcher | undefined): Promise<void> {
    const rec = (d: string, info: MatchInfo | undefined, exInfo: MatchInfo | undefined): void => {
      for (const name of this.listSync(d)) {
        const rel = d ? `${d}/${name}` : name;
        let childInfo: MatchInfo | undefined;
        let ignored = false;
        if (this.matcher) {
          const r = this.matcher.matchesUsingParentResults(rel, info);
          ignored = r.matched;
          childInfo = r.info;
        }
        let excluded = false;
        let childEx: MatchInfo | undefined;
        if (ex) {
          const r = ex.matchesUsingParentResults(rel, exInfo);
          excluded = r.matched;
          childEx = r.info;
        }
        const full = join(this.root, rel);
        const st = lstatSync(full, { bigint: true });
        if (!ignored && !excluded) {
          out.set(rel, toEntry(rel, st, st.isSymbolicLink() ? readlinkSync(full) : undefined));
          this.noteStat(rel, st);
        }
        if (st.isDirectory()) {
          // An excluded directory is still entered when `!` exceptions could re-include something below it.
          if ((ignored && !this.matcher!.exclusions) || (excluded && !ex!.exclusions)) continue;
          rec(rel, childInfo, childEx);
        }
      }
    };
    // Seed the parent results with the directory's own path (its ancestors are checked by isIgnored).
    const seed = dir && this.matcher ? this.matcher.matchesUsingParentResults(dir).info : undefined;
    const seedEx = dir && ex ? ex.matchesUsingParentResults(dir).info : undefined;
    rec(dir, seed, seedEx);
  }

  /**
   * Content hash of selected sources for cache keys: sha256 over, per entry
   * in path order, its path relative to the context root, type, mode, uid,
   * gid, link target and the sha256 of file content. Never mtime, so a
   * touched but unchanged file keeps its hash. Reads only the selected files,
   * and of those only the ones the content hash cache does not know.
   */
  async hash(selected: readonly SelectedSource[]): Promise<Digest> {
    const h = createHash('sha256');
    const cache = this.hashCache;
    const content = async (e: ContextEntry): Promise<string> => {
      if (e.type !== 'file') return '';
      const key = this.statKeys.get(e.path);
      const known = key ? cache?.get(key) : undefined;
      if (known) return known;
      const hex = await sha256File(join(this.root, e.path), e.size);
      if (key) cache?.set(key, hex);
      return hex;
    };
    for (const s of selected) {
      h.update(`source ${JSON.stringify(s.source)}\n`);
      // file contents are hashed concurrently (bounded); the digest is fed in entry order
      const contents = await mapLimit(s.entries, HASH_CONCURRENCY, content);
      for (const [i, e] of s.entries.entries()) {
        const content = contents[i]!;
        const rec = [e.path, e.type, e.mode.toString(8), String(e.uid), String(e.gid), e.linkname ?? '', content];
        h.update(JSON.stringify(rec) + '\n');
      }
    }
    await cache?.save().catch(() => undefined);
    return `sha256:${h.digest('hex')}` as Digest;
  }
}

/** How many context files are hashed at once. */
const HASH_CONCURRENCY = 32;
/** Files up to this size are read in one call rather than streamed. */
const SMALL_FILE = 1 << 20;

/** `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function sha256File(path: string, size = Infinity): Promise<string> {
  if (size <= SMALL_FILE) return createHash('sha256').update(await readFile(path)).digest('hex');
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** A pass-through that gunzips its input when it starts with the gzip magic (context tars may be compressed). */
function autoDecompress(): Transform {
  let gunzip: Gunzip | undefined;
  let decided = false;
  let pending = Buffer.alloc(0);
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let data = chunk;
      if (!decided) {
        pending = Buffer.concat([pending, chunk]);
        if (pending.length < 2) return cb();
        decided = true;
        if (pending[0] === 0x1f && pending[1] === 0x8b) {
          gunzip = createGunzip();
          gunzip.on('data', (d: Buffer) => t.push(d));
          gunzip.on('error', (e) => t.destroy(e));
        }
        data = pending;
      }
      if (gunzip) gunzip.write(data, () => cb());
      else cb(null, data);
    },
    flush(cb) {
      if (!decided && pending.length) this.push(pending);
      if (gunzip) {
        gunzip.once('end', () => cb());
        gunzip.end();
      } else cb();
    },
  });
  return t;
}
