/**
 * Shared setup of the build integration tests: a temp store root with the offline busybox base
 * imported as `localhost/test/busybox:latest`, and a `runBuild` that drives the library build
 * through the CLI's runtime wiring, collecting progress events.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build, type BuildResult } from '../../../builder/build.js';
import { BuildContext } from '../../../builder/context/context.js';
import { FileBuildCache } from '../../../builder/solver/cache.js';
import { DirCacheMounts } from '../../../builder/solver/cache-mounts.js';
import type { ProgressEvent } from '../../../builder/solver/progress.js';
import { RuntimeExecutor, RuntimeSnapshotter, StoreImageResolver } from '../../../src/cli/wiring/build-runtime.js';
import { importRootfs } from '../../../src/oci/store/import.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { REPO_ROOT } from '../../helpers/tools.js';

/** testdata/build. */
export const CASES = join(REPO_ROOT, 'testdata', 'build');
/** The busybox base's name in test stores. */
export const BUSYBOX = 'localhost/test/busybox:latest';

/** Why the build integration tests cannot run here, or undefined. */
export function buildUnavailable(): string | undefined {
  return firstReason(
    needRoot(),
    needOverlay(),
    needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
    existsSync(join(REPO_ROOT, 'native/build/tsbuild-helper')) ? undefined : 'native/build is not built (make -C native)',
  );
}

/** A temp store root with busybox imported. */
export async function makeStore(): Promise<{ root: string; store: ImageStore }> {
  const root = mkdtempSync(join(tmpdir(), 'tsbuild-build-test-'));
  const store = await ImageStore.open(root);
  const desc = await importRootfs(store, await busyboxRootfs(), { created: new Date('2024-01-01T00:00:00Z'), changes: ['CMD ["sh"]'] });
  await store.tag(BUSYBOX, desc);
  return { root, store };
}

/** Options of {@link runBuild}. */
export interface RunBuildOptions {
  readonly dockerfile?: string;
  readonly context?: string;
  readonly buildArgs?: Record<string, string>;
  readonly target?: string;
  readonly noCache?: boolean;
  readonly sourceDateEpoch?: number;
  readonly network?: 'host' | 'none';
  readonly secrets?: ReadonlyMap<string, Buffer>;
  readonly ssh?: ReadonlyMap<string, string>;
  readonly signal?: AbortSignal;
}

/** Builds with the runtime wiring; returns the result and the progress events. */
export async function runBuild(root: string, store: ImageStore, o: RunBuildOptions): Promise<{ result: BuildResult; events: ProgressEvent[]; output: string }> {
  const events: ProgressEvent[] = [];
  const ctxDir = o.context ?? mkdtempSync(join(tmpdir(), 'tsbuild-empty-ctx-'));
  const context = await BuildContext.fromDirectory(ctxDir, {});
  try {
    const dockerfile = o.dockerfile ?? (await readFile(join(ctxDir, 'Dockerfile'), 'utf8'));
    const result = await build({
      dockerfile,
      context,
      ...(o.buildArgs ? { buildArgs: o.buildArgs } : {}),
      ...(o.target ? { target: o.target } : {}),
      resolver: new StoreImageResolver(store),
      snapshotter: new RuntimeSnapshotter(root, undefined, runtimeOptions(root)),
      executor: new RuntimeExecutor(root, undefined, runtimeOptions(root)),
      content: store.content,
      cache: new FileBuildCache(root, store.content),
      ...(o.noCache ? { noCache: true } : {}),
      ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
      ...(o.network ? { defaultNetwork: o.network } : {}),
      progress: (e) => events.push(e),
      cacheMounts: new DirCacheMounts(root),
      ...(o.secrets ? { secrets: o.secrets } : {}),
      ...(o.ssh ? { ssh: o.ssh } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const output = events.filter((e): e is Extract<ProgressEvent, { kind: 'output' }> => e.kind === 'output').map((e) => e.chunk.toString()).join('');
    return { result, events, output };
  } finally {
    await context.close();
    if (!o.context) rmSync(ctxDir, { recursive: true, force: true });
  }
}

/** Names of steps reported CACHED / executed. */
export function stepStates(events: readonly ProgressEvent[]): { cached: string[]; ran: string[] } {
  const cached: string[] = [];
  const ran: string[] = [];
  for (const e of events) {
    if (e.kind !== 'step') continue;
    if (e.state === 'cached') cached.push(e.name);
    if (e.state === 'start') ran.push(e.name);
  }
  return { cached, ran };
}

/** Per-store cgroup parent and secret dir prefix, so parallel test files see only their own. */
export function runtimeOptions(root: string): { cgroupParent: string; secretsPrefix: string } {
  const tag = basename(root).replace(/[^A-Za-z0-9_-]/g, '');
  return { cgroupParent: `tsbuild-build-${tag}`, secretsPrefix: `tsbuild-secrets-${tag}-` };
}

/** Mounts under `root`, the store's RUN cgroups and secret dirs (what a build must not leave behind). */
export function leftovers(root: string, opts: { cgroupParent?: string; secretsPrefix?: string } = {}): string[] {
  const out: string[] = [];
  const own = runtimeOptions(root);
  const cgroupParent = opts.cgroupParent ?? own.cgroupParent;
  const prefix = opts.secretsPrefix ?? own.secretsPrefix;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(root)) out.push(`mount: ${line.split(' ')[4]}`);
  }
  for (const base of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    for (const sub of [cgroupParent, `tsbuild/${cgroupParent}`]) {
      const d = join(base, sub);
      if (existsSync(d)) for (const n of readdirSync(d, { withFileTypes: true })) if (n.isDirectory()) out.push(`cgroup: ${join(d, n.name)}`);
    }
  }
  if (existsSync('/dev/shm')) for (const n of readdirSync('/dev/shm')) if (n.startsWith(prefix)) out.push(`secret dir: /dev/shm/${n}`);
  const containers = join(root, 'containers');
  if (existsSync(containers)) for (const n of readdirSync(containers)) if (/^[0-9a-f]{64}$/.test(n)) out.push(`container dir: ${n}`);
  return out;
}

/** Unpacks an image's layers in order into `dir` (whiteouts applied): the rootfs a container would see. */
export async function unpackImage(image: import('../../../src/oci/image.js').Image, dir: string): Promise<void> {
  const { extractLayer } = await import('../../../src/oci/tar/extract.js');
  for (const l of await image.layers()) await extractLayer(await l.uncompressed(), dir, { whiteouts: 'apply' });
}

/** The entries of a layer tar: path → entry. */
export async function layerEntries(layer: import('../../../src/oci/image.js').Layer): Promise<Map<string, import('../../../src/oci/tar/entry.js').TarEntry>> {
  const { readTar } = await import('../../../src/oci/tar/reader.js');
  const out = new Map<string, import('../../../src/oci/tar/entry.js').TarEntry>();
  for await (const { entry, body } of readTar(await layer.uncompressed())) {
    out.set(entry.path.replace(/^\.?\//, '').replace(/\/$/, ''), entry);
    body.resume();
    await new Promise<void>((r) => (body.readableEnded ? r() : body.once('end', r)));
  }
  return out;
}

/** One rootfs entry as the differential tests compare it (path is the map key). */
export interface RootfsNode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha?: string;
  link?: string;
  /** Other paths of the same inode (hardlinks), sorted; only with `hardlinks: true`. */
  links?: string[];
}

/**
 * Every entry under `dir` (relative paths, sorted walk): type, mode bits, owner, size, content
 * hash of files, link target of symlinks, and with `hardlinks` the other paths of each inode.
 */
export function treeManifest(dir: string, opts: { hardlinks?: boolean } = {}): Map<string, RootfsNode> {
  const out = new Map<string, RootfsNode>();
  const inodes = new Map<number, string[]>();
  const rec = (d: string, rel: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(p);
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
      out.set(r, {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: type === 'file' ? st.size : 0,
        ...(type === 'file' ? { sha: createHash('sha256').update(readFileSync(p)).digest('hex') } : {}),
        ...(type === 'symlink' ? { link: readlinkSync(p) } : {}),
      });
      if (opts.hardlinks && type === 'file' && st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), r]);
      if (type === 'dir') rec(p, r);
    }
  };
  rec(dir, '');
  for (const group of inodes.values()) for (const p of group) out.get(p)!.links = group.filter((x) => x !== p).sort();
  return out;
}
