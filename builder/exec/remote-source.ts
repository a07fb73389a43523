/**
 * Remote sources of `ADD`: an HTTP(S) URL (a file named after the URL's last path segment, mode
 * 0600, mtime from Last-Modified, never extracted, as BuildKit's http source) and a git
 * repository (`https://host/repo.git#ref:subdir`, `git@host:repo.git#ref`, `git://…`, `ssh://…`),
 * checked out with the host's `git`. Both land in a directory the caller owns and removes.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, rm, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError } from './errors.js';

/** True for the `http://` and `https://` sources ADD downloads (a git URL is not one). */
export function isHttpSource(src: string): boolean {
  return /^https?:\/\//i.test(src) && !parseGitSource(src);
}

/** A git source of ADD, split like BuildKit's gitutil.ParseGitRef. */
export interface GitSource {
  /** The remote as git takes it (no fragment). */
  readonly remote: string;
  /** Branch, tag or commit after `#` ('' for the remote's HEAD). */
  readonly ref: string;
  /** Directory of the repository to copy (after `#ref:`), '' for the root. */
  readonly subdir: string;
}

/**
 * Parses a git source: `git@host:path`, `ssh://`, `git://`, or an `http(s)://` URL whose path
 * ends in `.git`; `#ref[:subdir]` picks a branch, tag or commit and a directory. Anything else
 * gives undefined.
 */
export function parseGitSource(src: string): GitSource | undefined {
  const hash = src.indexOf('#');
  const remote = hash < 0 ? src : src.slice(0, hash);
  const frag = hash < 0 ? '' : src.slice(hash + 1);
  let isGit = false;
  if (/^git@[^:/]+:.+/.test(remote) || /^(ssh|git):\/\/[^/]+\/.+/i.test(remote)) isGit = true;
  else if (/^https?:\/\//i.test(remote)) {
    try {
      isGit = new URL(remote).pathname.replace(/\/+$/, '').endsWith('.git');
    } catch {
      isGit = false;
    }
  }
  if (!isGit) return undefined;
  const colon = frag.indexOf(':');
  return { remote, ref: colon < 0 ? frag : frag.slice(0, colon), subdir: colon < 0 ? '' : frag.slice(colon + 1) };
}

/** The file name BuildKit gives a downloaded URL: the last path segment, else `__unnamed__`. */
export function urlFileName(url: string): string {
  let p: string;
  try {
    p = new URL(url).pathname;
  } catch {
    return '__unnamed__';
  }
  const base = posix.basename(p);
  return base && base !== '.' && base !== '/' ? decodeURIComponent(base) : '__unnamed__';
}

/** A downloaded file. */
export interface Download {
  /** Host path of the file (mode 0600, mtime from Last-Modified when the server sent one). */
  readonly path: string;
  readonly name: string;
  readonly digest: string;
  readonly size: number;
  readonly lastModified?: Date;
}

/**
 * Downloads `url` into `dir/<name>` (following redirects), hashing it on the way. With
 * `checksum` (`sha256:<hex>`), a different digest is a BuildError CHECKSUM_MISMATCH naming the
 * URL and both digests, and nothing is kept.
 */
export async function downloadUrl(url: string, dir: string, checksum?: string, signal?: AbortSignal): Promise<Download> {
  if (checksum) parseChecksum(checksum, url);
  const name = urlFileName(url);
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', ...(signal ? { signal } : {}) });
  } catch (e) {
    throw new BuildError('FETCH_FAILED', `downloading ${url}: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`, { cause: e });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new BuildError('FETCH_FAILED', `downloading ${url}: the server answered ${res.status} ${res.statusText}`.trimEnd());
  }
  const h = createHash('sha256');
  let size = 0;
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => {
    h.update(c);
    size += c.length;
  });
  await pipeline(body, createWriteStream(path, { mode: 0o600 }));
  const digest = `sha256:${h.digest('hex')}`;
  if (checksum && checksum !== digest) {
    await rm(path, { force: true });
    throw new BuildError('CHECKSUM_MISMATCH', `checksum mismatch for ${url}: expected ${checksum}, got ${digest}`);
  }
  await chmod(path, 0o600);
  const lm = res.headers.get('last-modified');
  const lastModified = lm ? new Date(lm) : undefined;
  const valid = lastModified && !Number.isNaN(lastModified.getTime()) ? lastModified : undefined;
  if (valid) await utimes(path, valid, valid);
  return { path, name, digest, size, ...(valid ? { lastModified: valid } : {}) };
}

/** Validates an ADD `--checksum` for a URL: `sha256:` + 64 hex digits. */
export function parseChecksum(checksum: string, url: string): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) throw new BuildError('INVALID_CHECKSUM', `invalid --checksum ${JSON.stringify(checksum)} for ${url}: expected sha256:<64 hex digits>`);
  return checksum;
}

async function git(args: readonly string[], cwd: string | undefined, what: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('git', [...args], {
      ...(cwd ? { cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      // never prompt for credentials: a build is not interactive
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: process.env['GIT_SSH_COMMAND'] ?? 'ssh -o BatchMode=yes' },
      ...(signal ? { signal } : {}),
    });
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    p.on('error', (e) => reject(new BuildError('FETCH_FAILED', `${what}: running git: ${e.message}`, { cause: e })));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new BuildError('FETCH_FAILED', `${what}: git ${args[0]} exited with code ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`))));
  });
}

/**
 * The commit `src.ref` names on the remote (`git ls-remote`); a full commit id is taken as is.
 * Branches win over tags of the same name, as BuildKit resolves them.
 */
export async function resolveGitCommit(src: GitSource, signal?: AbortSignal): Promise<string> {
  if (/^[0-9a-f]{40}$/.test(src.ref)) return src.ref;
  const want = src.ref || 'HEAD';
  const out = await git(['ls-remote', '--', src.remote, want], undefined, `resolving ${src.remote}#${want}`, signal);
  const rows = out.split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]);
  const pick = (name: string) => rows.find((r) => r[1] === name)?.[0];
  const commit = want === 'HEAD' ? pick('HEAD') : pick(`refs/heads/${want}`) ?? pick(`refs/tags/${want}^{}`) ?? pick(`refs/tags/${want}`) ?? pick(want);
  if (!commit) throw new BuildError('FETCH_FAILED', `resolving ${src.remote}#${want}: no such branch or tag on the remote`);
  return commit;
}

/**
 * Checks `commit` of `src.remote` out into `dir` (created), without `.git` unless `keepGitDir`;
 * returns the directory to copy (`dir` or its `subdir`).
 */
export async function checkoutGit(src: GitSource, commit: string, dir: string, keepGitDir: boolean, signal?: AbortSignal): Promise<string> {
  const what = `fetching ${src.remote}#${src.ref || 'HEAD'}`;
  await mkdir(dir, { recursive: true });
  await git(['init', '-q', dir], undefined, what, signal);
  await git(['remote', 'add', 'origin', src.remote], dir, what, signal);
  // a shallow fetch of the one commit; servers that refuse fetching a bare commit get the ref
  await git(['fetch', '-q', '--depth=1', 'origin', commit], dir, what, signal).catch(async () => git(['fetch', '-q', 'origin', src.ref || 'HEAD'], dir, what, signal));
  await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', commit], dir, what, signal);
  await git(['submodule', 'update', '--init', '--recursive', '--depth=1'], dir, what, signal).catch(() => undefined);
  if (!keepGitDir) await rm(join(dir, '.git'), { recursive: true, force: true });
  if (!src.subdir) return dir;
  const sub = posix.normalize('/' + src.subdir);
  if (sub.split('/').includes('..')) throw new BuildError('FETCH_FAILED', `${what}: invalid subdirectory ${src.subdir}`);
  return join(dir, sub);
}
