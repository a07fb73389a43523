/**
 * COPY and ADD into a mounted build root, with Docker's destination rules: several sources or
 * a trailing `/` make the destination a directory; a directory source copies its contents; a
 * single file goes into the destination when that is an existing directory, else becomes it.
 * Context files are owned by 0:0 unless `--chown`; files from a stage or image keep their
 * owner. `--chmod` applies to everything copied. Parent directories COPY creates belong to the
 * `--chown` owner, as in buildkit.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdtemp, readdir, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, createReadStream, lchownSync, linkSync, lstatSync, openSync, readlinkSync, readSync, closeSync, rmSync, symlinkSync, utimesSync, lutimesSync, mkdirSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { decompressStream, detectCompression, extractLayer } from '../../src/oci/tar/index.js';
import type { BuildContext, SelectedSource } from '../context/context.js';
import { goMatch, hasMeta } from '../context/go-path.js';
import type { CopyStep } from '../convert/resolve.js';
import { BuildError } from './errors.js';
import { mkdirAllInRoot, resolveInRoot, resolveOwner } from './root-path.js';

/**
 * A source ADD fetched from outside the context: a downloaded URL (`file`: copied as that file,
 * never extracted) or a git checkout (`dir`: its contents are copied). Owned by 0:0 unless `--chown`.
 */
export interface FetchedSource {
  readonly host: string;
  readonly name: string;
  readonly kind: 'file' | 'dir';
}

/**
 * Where a COPY reads from: the build context (sources already selected, plus ADD's fetched
 * URL and git sources) or another root (a stage or an image).
 */
export type CopyInput =
  | { readonly kind: 'context'; readonly context: BuildContext; readonly selected: readonly SelectedSource[]; readonly fetched?: readonly FetchedSource[] }
  | { readonly kind: 'root'; readonly root: string };

interface Item {
  /** Host path of the source. */
  readonly host: string;
  /** Path relative to the copied root ('' for the root itself). */
  readonly rel: string;
  readonly st: Stats;
}

interface Root {
  readonly host: string;
  readonly name: string;
  /** Path relative to the source root it was selected from (`COPY --parents` keeps it). */
  readonly relPath: string;
  readonly st: Stats;
  /** The root and (for a directory) everything below it, parents first. */
  readonly items: () => Promise<Item[]>;
  /** A downloaded URL: never extracted, even when it is a tar. */
  readonly noUnpack?: boolean;
}

async function fetchedRoots(fetched: readonly FetchedSource[]): Promise<Root[]> {
  const roots: Root[] = [];
  for (const f of fetched) {
    const st = await stat(f.host);
    const items = async (): Promise<Item[]> => {
      const out: Item[] = [{ host: f.host, rel: '', st }];
      if (st.isDirectory()) await walkHost(f.host, '', out);
      return out;
    };
    roots.push({ host: f.host, name: f.name, relPath: '', st, items, noUnpack: true });
  }
  return roots;
}

async function walkHost(dir: string, rel: string, out: Item[]): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const n of names) {
    const host = join(dir, n);
    const st = await lstat(host);
    const r = rel ? `${rel}/${n}` : n;
    out.push({ host, rel: r, st });
    if (st.isDirectory()) await walkHost(host, r, out);
  }
}

async function contextRoots(context: BuildContext, selected: readonly SelectedSource[]): Promise<Root[]> {
  const roots: Root[] = [];
  for (const s of selected) {
    for (const r of s.roots) {
      // a root symlink is followed (buildkit FollowSymlinks), but only inside the context
      const host = r.type === 'symlink' ? (await resolveInRoot(context.root, '/' + r.path)).host : join(context.root, r.path);
      const st = await stat(host).catch((e: unknown) => {
        throw new BuildError('COPY_FAILED', `${JSON.stringify('/' + r.path)}: not found (a symlink whose target is outside the context or missing)`, { cause: e });
      });
      const prefix = r.path === '' ? '' : r.path + '/';
      const items = async (): Promise<Item[]> => {
        const out: Item[] = [{ host, rel: '', st }];
        if (!st.isDirectory()) return out;
        for (const e of s.entries) {
          if (e.path === r.path || !e.path.startsWith(prefix)) continue;
          const h = join(context.root, e.path);
          out.push({ host: h, rel: e.path.slice(prefix.length), st: lstatSync(h) });
        }
        return out;
      };
      roots.push({ host, name: posix.basename('/' + r.path) || '', relPath: r.path, st, items });
    }
  }
  return roots;
}

async function rootRoots(root: string, sources: readonly string[]): Promise<Root[]> {
  const roots: Root[] = [];
  for (const source of sources) {
    const clean = posix.normalize('/' + source);
    const matches: string[] = [];
    const base = posix.basename(clean);
    if (hasMeta(base)) {
      const dir = await resolveInRoot(root, posix.dirname(clean));
      const names = await readdir(dir.host).catch(() => [] as string[]);
      for (const n of names.sort()) if (goMatch(base, n)) matches.push(posix.join(dir.path, n));
    } else {
      const r = await resolveInRoot(root, clean);
      if (await lstat(r.host).catch(() => undefined)) matches.push(r.path);
    }
    if (matches.length === 0) throw new BuildError('COPY_FAILED', `${JSON.stringify(clean)}: not found`);
    for (const m of matches) {
      const r = await resolveInRoot(root, m);
      const st = await stat(r.host);
      const items = async (): Promise<Item[]> => {
        const out: Item[] = [{ host: r.host, rel: '', st }];
        if (st.isDirectory()) await walkHost(r.host, '', out);
        return out;
      };
      roots.push({ host: r.host, name: posix.basename(m), relPath: m.replace(/^\/+/, ''), st, items });
    }
  }
  return roots;
}

/**
 * Content digest of what a COPY/ADD from another root (a stage's) reads: for each source the
 * same selection {@link applyCopy} makes, every item's relative path, type, mode, owner, mtime,
 * link target, hard-link group and file content. A cache key built on it survives changes to
 * the rest of that root.
 */
export async function rootSourcesDigest(root: string, sources: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const r of await rootRoots(root, sources)) {
    h.update(`root ${JSON.stringify(r.relPath)}\n`);
    const groups = new Map<string, number>();
    for (const it of await r.items()) {
      const st = it.st;
      let content = '';
      if (st.isFile()) {
        const f = createHash('sha256');
        await pipeline(createReadStream(it.host), f);
        content = f.digest('hex');
      } else if (st.isSymbolicLink()) content = await readlink(it.host);
      let group = -1;
      if (st.isFile() && st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`;
        group = groups.get(id) ?? groups.size;
        groups.set(id, group);
      }
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
      h.update(`${JSON.stringify([it.rel, type, st.mode, st.uid, st.gid, st.mtime.getTime(), group, content])}\n`);
    }
  }
  return `sha256:${h.digest('hex')}`;
}

/** Compressions the OCI tar module does not read (ADD accepts them, like buildkit): decompressed by the host's tool. */
function externalCompression(path: string): 'bzip2' | 'xz' | undefined {
  const head = Buffer.alloc(6);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 6, 0);
  } finally {
    closeSync(fd);
  }
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return undefined;
}

/** Decompresses `path` with the host's tool into a temp file (removed by the caller with `dir`). */
async function externalDecompress(tool: 'bzip2' | 'xz', path: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-add-'));
  const file = join(dir, 'plain.tar');
  const out = openSync(file, 'w');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const p = spawn(tool, ['-dc', '--', path], { stdio: ['ignore', out, 'pipe'] });
      let err = '';
      p.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
      p.on('error', (e) => reject(new BuildError('COPY_FAILED', `decompressing ${path} with ${tool}`, { cause: e })));
      p.on('close', (c) => (c === 0 ? resolve(c) : reject(new BuildError('COPY_FAILED', `decompressing ${path}: ${tool} exited ${c}: ${err.trim()}`))));
    });
    void code;
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  } finally {
    closeSync(out);
  }
  return { dir, file };
}

async function plainStream(path: string): Promise<Readable> {
  const d = await detectCompression(createReadStream(path));
  return d.compression === 'none' ? d.stream : d.stream.pipe(decompressStream(d.compression));
}

/** True when `path` is a tar archive, plain or compressed (ADD extracts those). */
async function isTarArchive(path: string): Promise<boolean> {
  const ext = externalCompression(path);
  if (ext) {
    const r = spawnSync('sh', ['-c', '"$0" -dc -- "$1" 2>/dev/null | head -c 512', ext, path], { maxBuffer: 4096 });
    const buf = r.stdout ?? Buffer.alloc(0);
    return buf.length >= 512 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  }
  let plain: Readable | undefined;
  try {
    plain = await plainStream(path);
    let buf = Buffer.alloc(0);
    for await (const c of plain) {
      buf = Buffer.concat([buf, c as Buffer]);
      if (buf.length >= 512) break;
    }
    return buf.length >= 512 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  } catch {
    return false;
  } finally {
    plain?.destroy();
  }
}

/**
 * Extracts an ADD archive like BuildKit (Docker's archive package): a hardlink entry's owner and
 * mode apply to the inode it shares, and `--chown` owns every entry (BuildKit since v0.23).
 */
async function extractArchive(path: string, destHost: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const opts = { whiteouts: 'apply', hardlinkMetadata: true, ...(owner ? { owner } : {}) } as const;
  const ext = externalCompression(path);
  if (!ext) return extractLayer(await plainStream(path), destHost, opts);
  const { dir, file } = await externalDecompress(ext, path);
  try {
    await extractLayer(createReadStream(file), destHost, opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Applies a COPY/ADD step to `destRoot` (a mounted, writable root). Throws BuildError
 * COPY_FAILED naming the path for missing sources and impossible destinations.
 */
export async function applyCopy(step: CopyStep, destRoot: string, input: CopyInput): Promise<void> {
  const roots = input.kind === 'context' ? [...(await fetchedRoots(input.fetched ?? [])), ...(await contextRoots(input.context, input.selected))] : await rootRoots(input.root, step.sources);
  const total = roots.length + step.contents.length;
  const destIsDir = step.dest.endsWith('/') || total > 1 || step.parents;
  if (total > 1 && !step.dest.endsWith('/') && !step.parents) {
    throw new BuildError('COPY_FAILED', `when using ${step.kind} with more than one source file, the destination must be a directory and end with a /`);
  }
  const owner = step.chown ? await resolveOwner(destRoot, step.chown) : undefined;
  const parentOwner = owner ?? { uid: 0, gid: 0 };
  const mode = step.chmod ? parseInt(step.chmod, 8) : undefined;
  if (step.chmod && (mode === undefined || Number.isNaN(mode) || !/^[0-7]{3,4}$/.test(step.chmod))) {
    throw new BuildError('COPY_FAILED', `invalid --chmod value ${JSON.stringify(step.chmod)}: only octal modes are supported`);
  }
  const dest = step.dest.length > 1 ? step.dest.replace(/\/+$/, '') : '/';
  const dirTimes: { host: string; st: Stats }[] = [];
  /** Hardlinked sources (dev:ino) → where the first was copied: later ones are linked to it, as buildkit does. */
  const links = new Map<string, string>();

  const fileTarget = async (name: string): Promise<string> => {
    if (destIsDir) return posix.join(dest, name);
    const r = await resolveInRoot(destRoot, dest);
    const st = await stat(r.host).catch(() => undefined);
    return st?.isDirectory() ? posix.join(r.path, name) : dest;
  };

  const own = (host: string, st: Stats | undefined, isLink: boolean) => {
    const uid = owner ? owner.uid : input.kind === 'context' ? 0 : st!.uid;
    const gid = owner ? owner.gid : input.kind === 'context' ? 0 : st!.gid;
    if (isLink) lchownSync(host, uid, gid);
    else chownSync(host, uid, gid);
  };

  /**
   * Host paths of the destination directories made or resolved so far: a directory's items
   * share one lookup. Nothing but this step writes the root meanwhile, and an item that
   * replaces a path drops its entry.
   */
  const parents = new Map<string, string>();
  const parentDir = async (dir: string): Promise<string> => {
    let h = parents.get(dir);
    if (h === undefined) {
      h = await mkdirAllInRoot(destRoot, dir, parentOwner);
      parents.set(dir, h);
    }
    return h;
  };

  // Synchronous file system calls per item: a COPY of thousands of small files costs more
  // through the thread pool (one round trip per call) than it blocks the event loop.
  const lstatOrUndefined = (p: string): Stats | undefined => lstatSync(p, { throwIfNoEntry: false });
  /**
   * Host paths (resolved, so every alias of a path is the same string) of the destination
   * directories this step created, which hold nothing but what it wrote since (a directory is
   * never replaced by another item; an archive extraction forgets them all), and of every item
   * written: an item whose directory is fresh and whose path was not written yet needs no
   * lookup (one lstat through the overlay's lower layers per file saved).
   */
  const freshDirs = new Set<string>();
  const written = new Set<string>();
  const writeItem = async (target: string, it: Item) => {
    const parent = await parentDir(posix.dirname(target));
    const host = join(parent, posix.basename(target));
    parents.delete(target);
    const existing = freshDirs.has(parent) && !written.has(host) ? undefined : lstatOrUndefined(host);
    written.add(host);
    if (it.st.isDirectory()) {
      if (existing && !existing.isDirectory()) rmSync(host, { force: true });
      if (!existing || !existing.isDirectory()) {
        mkdirSync(host);
        freshDirs.add(host);
      }
      own(host, it.st, false);
      chmodSync(host, mode ?? it.st.mode & 0o7777);
      dirTimes.push({ host, st: it.st });
      return;
    }
    if (existing?.isDirectory()) throw new BuildError('COPY_FAILED', `cannot copy ${it.rel || posix.basename(it.host)} to ${target}: it is a directory`);
    if (existing) rmSync(host, { force: true });
    if (it.st.isSymbolicLink()) {
      symlinkSync(readlinkSync(it.host), host);
      own(host, it.st, true);
      lutimesSync(host, it.st.atime, it.st.mtime);
      return;
    }
    if (!it.st.isFile()) return; // sockets, devices and fifos of a context are skipped
    const id = `${it.st.dev}:${it.st.ino}`;
    const first = it.st.nlink > 1 ? links.get(id) : undefined;
    if (first) {
      linkSync(first, host);
      return;
    }
    if (it.st.nlink > 1) links.set(id, host);
    copyFileSync(it.host, host);
    own(host, it.st, false);
    chmodSync(host, mode ?? it.st.mode & 0o7777);
    utimesSync(host, it.st.atime, it.st.mtime);
  };

  for (const r of roots) {
    if (step.kind === 'ADD' && step.unpack !== false && input.kind === 'context' && !r.noUnpack && r.st.isFile() && (await isTarArchive(r.host))) {
      const d = await mkdirAllInRoot(destRoot, dest, parentOwner);
      freshDirs.clear();
      await extractArchive(r.host, d, owner);
      continue;
    }
    // --parents: the source's path below the context (or stage root) is kept under dest
    const base = step.parents && r.relPath ? posix.join(dest, r.relPath) : dest;
    if (r.st.isDirectory()) {
      const made = !(await lstat((await resolveInRoot(destRoot, base)).host).catch(() => undefined));
      const baseHost = await mkdirAllInRoot(destRoot, base, parentOwner);
      if (made) freshDirs.add(baseHost);
      written.add(baseHost);
      for (const it of await r.items()) {
        if (it.rel === '') continue;
        await writeItem(posix.join(base, it.rel), it);
      }
      continue;
    }
    const [it] = await r.items();
    await writeItem(step.parents && r.relPath ? base : await fileTarget(r.name), it!);
  }
  for (const c of step.contents) {
    const target = await fileTarget(posix.basename(c.path));
    const parent = await mkdirAllInRoot(destRoot, posix.dirname(target), parentOwner);
    const host = join(parent, posix.basename(target));
    await rm(host, { force: true });
    await writeFile(host, c.data, { mode: 0o644 });
    await chown(host, parentOwner.uid, parentOwner.gid);
    await chmod(host, mode ?? 0o644);
  }
  // directory times last: writing children changed them
  for (const d of dirTimes.reverse()) await utimes(d.host, d.st.atime, d.st.mtime);
}

/** Creates the WORKDIR directory (and parents) owned by the step's user, as buildkit does. */
export async function applyWorkdir(root: string, path: string, user: string): Promise<void> {
  const owner = await resolveOwner(root, user.split(':')[0] === '' ? '' : user).catch(() => ({ uid: 0, gid: 0 }));
  await mkdirAllInRoot(root, path, owner);
}

/** Used by tests: true when `p` exists in the root. */
export async function existsInRoot(root: string, p: string): Promise<boolean> {
  const r = await resolveInRoot(root, p);
  return !!(await lstat(r.host).catch(() => undefined));
}
