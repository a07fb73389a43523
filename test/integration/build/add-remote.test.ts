/**
 * ADD of remote sources with BuildKit's semantics: an HTTP URL (served by a loopback node:http
 * server here) becomes a file named after the URL path, mode 0600, mtime from Last-Modified,
 * never extracted; `--checksum` is verified and keys the cache without a download; a git
 * repository (served by `git daemon` on loopback) is checked out at a branch, tag or commit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError } from '../../../builder/exec/errors.js';
import { parseGitSource, urlFileName } from '../../../builder/exec/remote-source.js';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import type { TarEntry } from '../../../src/oci/tar/entry.js';
import { findTool } from '../../helpers/capabilities.js';
import { freePort } from '../../helpers/registry.js';
import { BUSYBOX, buildUnavailable, layerEntries, leftovers, makeStore, runBuild, stepStates } from './harness.js';

const why = buildUnavailable();
if (why) console.warn(`skip: ${why}`);
const noGit = findTool('git') ? undefined : 'git is not installed';
if (noGit) console.warn(`skip (git): ${noGit}`);

let root = '';
let store: ImageStore;
let server: Server;
let base = '';
const hits = new Map<string, number>();
const files = new Map<string, Buffer>();
const LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';
const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A one-file ustar archive (ADD must not extract a downloaded one). */
function tarOf(name: string, data: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const body = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  body.write(data);
  return Buffer.concat([h, body, Buffer.alloc(1024)]);
}

beforeAll(async () => {
  if (why) return;
  ({ root, store } = await makeStore());
  files.set('/files/hello.txt', Buffer.from('hello from the server\n'));
  files.set('/files/archive.tar', tarOf('inside.txt', 'inside\n'));
  files.set('/files/changing.txt', Buffer.from('version 1\n'));
  server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/moved') {
      res.writeHead(302, { location: '/files/hello.txt' }).end();
      return;
    }
    const body = files.get(path);
    if (!body) {
      res.writeHead(404).end('no such file');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'last-modified': LAST_MODIFIED }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (root) rmSync(root, { recursive: true, force: true });
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe('remote source parsing', () => {
  it('tells git sources from URLs and names downloads like BuildKit', () => {
    expect(parseGitSource('https://example.com/org/repo.git#v1:docs')).toEqual({ remote: 'https://example.com/org/repo.git', ref: 'v1', subdir: 'docs' });
    expect(parseGitSource('git@example.com:org/repo.git#main')).toEqual({ remote: 'git@example.com:org/repo.git', ref: 'main', subdir: '' });
    expect(parseGitSource('git://127.0.0.1:9418/repo.git')).toEqual({ remote: 'git://127.0.0.1:9418/repo.git', ref: '', subdir: '' });
    expect(parseGitSource('https://example.com/file.tar.gz')).toBeUndefined();
    expect(urlFileName('https://example.com/a/b/file.tar.gz?x=1')).toBe('file.tar.gz');
    expect(urlFileName('https://example.com/')).toBe('__unnamed__');
  });
});

describe.skipIf(!!why)('ADD <url>', () => {
  it('downloads into a file named after the URL (0600, Last-Modified mtime), never extracts, follows the destination rules', async () => {
    const good = sha(files.get('/files/hello.txt')!);
    const df = [
      `FROM ${BUSYBOX}`,
      `ADD --checksum=${good} ${base}/files/hello.txt /dl/`,
      `ADD ${base}/files/archive.tar /dl/`,
      `ADD ${base}/moved /renamed.txt`,
      `ADD --chown=65534:65534 ${base}/files/hello.txt /owned/`,
    ].join('\n');
    const { result } = await runBuild(root, store, { dockerfile: df });
    const layers = await result.image.layers();
    const all = new Map<string, TarEntry>();
    for (const l of layers.slice(-4)) for (const [k, v] of await layerEntries(l)) all.set(k, v);
    const hello = all.get('dl/hello.txt')!;
    expect(hello).toMatchObject({ type: 'file', mode: 0o600, uid: 0, gid: 0, size: files.get('/files/hello.txt')!.length });
    expect(hello.mtime).toBe(Date.parse(LAST_MODIFIED) / 1000);
    // a tar from a URL is kept as the file
    expect(all.get('dl/archive.tar')).toMatchObject({ type: 'file', size: files.get('/files/archive.tar')!.length });
    expect(all.has('dl/inside.txt')).toBe(false);
    // a destination without a trailing slash is the file's name; redirects are followed (name from the URL asked for)
    expect(all.get('renamed.txt')).toMatchObject({ type: 'file', mode: 0o600, size: files.get('/files/hello.txt')!.length });
    expect(all.get('owned/hello.txt')).toMatchObject({ uid: 65534, gid: 65534 });
    expect(leftovers(root)).toEqual([]);
  }, 120_000);

  it('a --checksum step is cached without a download; without one the content decides', async () => {
    const body = files.get('/files/hello.txt')!;
    const df = `FROM ${BUSYBOX}\nADD --checksum=${sha(body)} ${base}/files/hello.txt /c/\nADD ${base}/files/changing.txt /c/\n`;
    await runBuild(root, store, { dockerfile: df });
    hits.clear();
    const again = await runBuild(root, store, { dockerfile: df });
    expect(stepStates(again.events).cached).toHaveLength(2);
    expect(hits.get('/files/hello.txt') ?? 0).toBe(0);
    expect(hits.get('/files/changing.txt')).toBe(1); // downloaded for its content digest
    files.set('/files/changing.txt', Buffer.from('version 2\n'));
    const changed = await runBuild(root, store, { dockerfile: df });
    expect(stepStates(changed.events).cached).toHaveLength(1);
    expect(stepStates(changed.events).ran).toEqual([expect.stringContaining('changing.txt')]);
  }, 120_000);

  it('a checksum mismatch names the URL and both digests; a 404 names the URL and the status; a checksum on a local source is refused', async () => {
    const wrong = sha('something else');
    const url = `${base}/files/hello.txt`;
    const mismatch = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nADD --checksum=${wrong} ${url} /x/\n` }).catch((e: unknown) => e);
    expect(mismatch).toBeInstanceOf(BuildError);
    expect((mismatch as BuildError).code).toBe('CHECKSUM_MISMATCH');
    expect((mismatch as BuildError).message).toContain(`checksum mismatch for ${url}: expected ${wrong}, got ${sha(files.get('/files/hello.txt')!)}`);
    expect((mismatch as BuildError).location?.line).toBe(2);

    const missing = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nADD ${base}/nope.txt /x/\n` }).catch((e: unknown) => e);
    expect((missing as BuildError).code).toBe('FETCH_FAILED');
    expect((missing as BuildError).message).toContain(`downloading ${base}/nope.txt: the server answered 404`);

    const ctx = tmp('tsbuild-add-remote-ctx-');
    writeFileSync(join(ctx, 'local.txt'), 'x');
    const local = await runBuild(root, store, { context: ctx, dockerfile: `FROM ${BUSYBOX}\nADD --checksum=${wrong} local.txt /x/\n` }).catch((e: unknown) => e);
    expect((local as BuildError).code).toBe('INVALID_CHECKSUM');
    expect((local as BuildError).message).toContain("checksum can't be specified for non-HTTP(S) or git sources (local.txt)");
    const bad = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nADD --checksum=md5:abc ${url} /x/\n` }).catch((e: unknown) => e);
    expect((bad as BuildError).code).toBe('INVALID_CHECKSUM');
    const copy = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nCOPY ${url} /x/\n` }).catch((e: unknown) => e);
    expect((copy as BuildError).message).toContain("source can't be a URL or git repository for COPY");
    expect(leftovers(root)).toEqual([]);
  }, 120_000);
});

describe.skipIf(!!why || !!noGit)('ADD <git repository>', () => {
  let daemon: ChildProcess | undefined;
  let repoUrl = '';
  let firstCommit = '';
  let work = '';

  const git = (cwd: string, ...args: string[]) => {
    const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    const top = tmp('tsbuild-add-git-');
    work = join(top, 'work');
    mkdirSync(join(work, 'sub'), { recursive: true });
    git(top, 'init', '-q', '-b', 'main', work);
    writeFileSync(join(work, 'a.txt'), 'first\n');
    writeFileSync(join(work, 'sub', 'b.txt'), 'in sub\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'one');
    firstCommit = git(work, 'rev-parse', 'HEAD');
    git(work, 'tag', 'v1');
    writeFileSync(join(work, 'a.txt'), 'second\n');
    git(work, 'commit', '-q', '-am', 'two');
    git(top, 'clone', '-q', '--bare', work, join(top, 'srv', 'repo.git'));
    const port = await freePort();
    daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${join(top, 'srv')}`, '--listen=127.0.0.1', `--port=${port}`, join(top, 'srv')], { stdio: 'ignore' });
    repoUrl = `git://127.0.0.1:${port}/repo.git`;
    for (let i = 0; i < 100; i++) {
      if (spawnSync('git', ['ls-remote', repoUrl], { stdio: 'ignore' }).status === 0) return;
      await sleep(100);
    }
    throw new Error('git daemon did not start');
  }, 60_000);

  let httpGit: Server | undefined;
  afterAll(async () => {
    daemon?.kill('SIGTERM');
    await new Promise<void>((r) => (httpGit ? httpGit.close(() => r()) : r()));
  });

  it('an http(s) URL ending in .git is cloned through git (smart HTTP, git http-backend as CGI)', async () => {
    const srv = join(work, '..', 'srv');
    const backend = join(spawnSync('git', ['--exec-path'], { encoding: 'utf8' }).stdout.trim(), 'git-http-backend');
    httpGit = createServer((req, res) => {
      const [path, query = ''] = (req.url ?? '').split('?') as [string, string?];
      const cgi = spawn(backend, [], {
        env: { ...process.env, GIT_PROJECT_ROOT: srv, GIT_HTTP_EXPORT_ALL: '1', REQUEST_METHOD: req.method ?? 'GET', PATH_INFO: path, QUERY_STRING: query, CONTENT_TYPE: req.headers['content-type'] ?? '', REMOTE_ADDR: '127.0.0.1' },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      req.pipe(cgi.stdin!);
      const chunks: Buffer[] = [];
      cgi.stdout!.on('data', (c: Buffer) => chunks.push(c));
      cgi.on('close', () => {
        const out = Buffer.concat(chunks);
        const sep = out.indexOf('\r\n\r\n');
        const head = out.subarray(0, sep).toString('latin1').split('\r\n');
        let status = 200;
        const headers: Record<string, string> = {};
        for (const h of head) {
          const i = h.indexOf(':');
          if (i < 0) continue;
          const k = h.slice(0, i).trim();
          const v = h.slice(i + 1).trim();
          if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
          else headers[k] = v;
        }
        res.writeHead(status, headers).end(out.subarray(sep + 4));
      });
    });
    await new Promise<void>((r) => httpGit!.listen(0, '127.0.0.1', r));
    const addr = httpGit.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/repo.git`;
    const { output } = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nADD ${url}#v1:sub /from-http/\nRUN cat /from-http/b.txt\n` });
    expect(output).toBe('in sub\n');
  }, 120_000);

  it('checks out a branch (no .git), a tag with a subdirectory, a commit; --keep-git-dir keeps .git; a moved branch misses the cache', async () => {
    const df = [
      `FROM ${BUSYBOX}`,
      `ADD ${repoUrl}#main /src/`,
      `ADD ${repoUrl}#v1:sub /tagged`,
      `ADD --checksum=${firstCommit} ${repoUrl}#${firstCommit} /pinned/`,
      `ADD --keep-git-dir=true ${repoUrl} /kept/`,
      'RUN cat /src/a.txt /tagged/b.txt /pinned/a.txt && test ! -e /src/.git && test -d /kept/.git && test -f /kept/a.txt',
    ].join('\n');
    const { result, output } = await runBuild(root, store, { dockerfile: df });
    expect(output).toBe('second\nin sub\nfirst\n');
    const src = new Map<string, TarEntry>();
    for (const l of (await result.image.layers()).slice(1)) for (const [k, v] of await layerEntries(l)) src.set(k, v);
    expect(src.get('src/a.txt')).toMatchObject({ type: 'file', uid: 0, gid: 0, mode: 0o644 });
    expect(src.get('src/sub/b.txt')).toMatchObject({ type: 'file' });
    expect([...src.keys()].some((k) => k.startsWith('src/.git'))).toBe(false);

    const again = await runBuild(root, store, { dockerfile: df });
    expect(stepStates(again.events).ran).toEqual([]);
    // main moves on the server: its step (and what follows) runs again, the pinned ones stay cached
    writeFileSync(join(work, 'a.txt'), 'third\n');
    git(work, 'commit', '-q', '-am', 'three');
    git(work, 'push', '-q', join(work, '..', 'srv', 'repo.git'), 'main');
    const moved = await runBuild(root, store, { dockerfile: df });
    expect(moved.output).toBe('third\nin sub\nfirst\n');
    expect(stepStates(moved.events).cached).toEqual([]);
    expect(stepStates(moved.events).ran[0]).toContain('#main /src/');

    const bad = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nADD --checksum=${'0'.repeat(40)} ${repoUrl}#v1 /x/\n` }).catch((e: unknown) => e);
    expect((bad as BuildError).code).toBe('CHECKSUM_MISMATCH');
    expect((bad as BuildError).message).toContain(`expected commit ${'0'.repeat(40)}, got ${firstCommit}`);
    const unknown = await runBuild(root, store, { dockerfile: `FROM ${BUSYBOX}\nADD ${repoUrl}#no-such-branch /x/\n` }).catch((e: unknown) => e);
    expect((unknown as BuildError).code).toBe('FETCH_FAILED');
    expect((unknown as BuildError).message).toContain(`${repoUrl}#no-such-branch: no such branch or tag`);
    expect(leftovers(root)).toEqual([]);
  }, 180_000);
});
