/**
 * The composition root's adapters for the builder: tsbuild's runtime as the builder's
 * Snapshotter and Executor, and the local image store as its ImageResolver.
 *
 * A snapshot lives in `<store root>/containers/<id>/` with an owner record, like a `tsbuild run`
 * container, so the runtime's stale-container reaper cleans up after a killed build.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, constants as osConstants, release, tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { ActiveSnapshot, ExecRequest, ExecResult, Executor, ImageResolver, ProcessIO, Snapshotter } from '../../../builder/exec/types.js';
import { mkdirAllInRoot, readFileInRoot, resolveOwner } from '../../../builder/exec/root-path.js';
import type { SnapshotStore } from '../../../runtime/rootfs/snapshots.js';
import type { BindMount, TmpfsMount } from '../../../runtime/spec/from-image.js';
import type { ImageConfig } from '../../oci/config.js';
import type { Image } from '../../oci/image.js';
import { formatPlatform, hostPlatform, type Platform } from '../../oci/platform.js';
import type { ImageStore } from '../../oci/store/image-store.js';
import type { Digest } from '../../oci/digest.js';
import { formatReference, parseReference, type Reference } from '../../oci/reference.js';
import { TsbuildError } from '../../util/errors.js';
import type { RemoteOptions } from '../../../registry/remote/options.js';
import type { ProgressSink } from '../../../builder/solver/progress.js';
import { nullLogger, type Logger } from '../../util/logger.js';

/** The runtime, loaded on first use: a fully cached build never needs it. */
const runtime = (() => {
  let p: Promise<{
    createCgroupManager: typeof import('../../../runtime/cgroups/manager.js').createCgroupManager;
    createContainer: typeof import('../../../runtime/container/container.js').createContainer;
    processStartTime: typeof import('../../../runtime/container/state.js').processStartTime;
    prepareRootfs: typeof import('../../../runtime/rootfs/prepare.js').prepareRootfs;
    unmount: typeof import('../../../runtime/rootfs/prepare.js').unmount;
    SnapshotStore: typeof import('../../../runtime/rootfs/snapshots.js').SnapshotStore;
    reapStaleContainers: typeof import('../../../runtime/run.js').reapStaleContainers;
    specFromImage: typeof import('../../../runtime/spec/from-image.js').specFromImage;
  }> | undefined;
  return () =>
    (p ??= (async () => {
      const [cg, ct, st, pr, sn, rn, sp] = await Promise.all([
        import('../../../runtime/cgroups/manager.js'),
        import('../../../runtime/container/container.js'),
        import('../../../runtime/container/state.js'),
        import('../../../runtime/rootfs/prepare.js'),
        import('../../../runtime/rootfs/snapshots.js'),
        import('../../../runtime/run.js'),
        import('../../../runtime/spec/from-image.js'),
      ]);
      return {
        createCgroupManager: cg.createCgroupManager,
        createContainer: ct.createContainer,
        processStartTime: st.processStartTime,
        prepareRootfs: pr.prepareRootfs,
        unmount: pr.unmount,
        SnapshotStore: sn.SnapshotStore,
        reapStaleContainers: rn.reapStaleContainers,
        specFromImage: sp.specFromImage,
      };
    })());
})();

/** Hostname of RUN containers (buildkit's). */
export const BUILD_HOSTNAME = 'buildkitsandbox';

/** Memory-backed directory for secret files (falls back to the OS temp dir when absent). */
const SECRETS_PARENT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

const DEFAULT_HOSTS = '127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n';

/** Where RUN containers' cgroups and secret dirs go; tests give each store its own. */
export interface BuildRuntimeOptions {
  /** Parent of RUN cgroups (relative to the runtime's own cgroup); default `tsbuild-build`. */
  readonly cgroupParent?: string;
  /** Name prefix of per-RUN secret directories in /dev/shm; default `tsbuild-secrets-`. */
  readonly secretsPrefix?: string;
  /** Where binfmt_misc handlers are listed (tests); default /proc/sys/fs/binfmt_misc. */
  readonly binfmtDir?: string;
}

/** qemu's name of an OCI architecture (binfmt handlers are usually named qemu-<name>). */
const QEMU_ARCH: Readonly<Record<string, string>> = {
  amd64: 'x86_64', '386': 'i386', arm64: 'aarch64', arm: 'arm', ppc64le: 'ppc64le', ppc64: 'ppc64', s390x: 's390x',
  riscv64: 'riscv64', mips64le: 'mips64el', mips64: 'mips64', mipsle: 'mipsel', mips: 'mips', loong64: 'loongarch64',
};

/**
 * Why binaries of `platform` cannot run on this host, or undefined: the host's own platform
 * runs; 386 on amd64 runs natively; anything else needs an enabled binfmt_misc handler whose
 * name mentions the qemu architecture name (qemu-aarch64, qemu-aarch64-static, …).
 */
export function binfmtMissing(platform: Platform, dir: string): string | undefined {
  const host = hostPlatform();
  if (platform.os !== 'linux') return `${formatPlatform(platform)} is not a Linux platform`;
  if (platform.architecture === host.architecture) return undefined;
  if (host.architecture === 'amd64' && platform.architecture === '386') return undefined;
  const qemu = QEMU_ARCH[platform.architecture] ?? platform.architecture;
  let names: string[];
  try {
    if (!/^enabled/.test(readFileSync(join(dir, 'status'), 'utf8'))) return 'no emulator (binfmt_misc is disabled)';
    names = readdirSync(dir);
  } catch {
    return 'no emulator (binfmt_misc is not mounted)';
  }
  for (const n of names) {
    if (n === 'status' || n === 'register') continue;
    const parts = n.toLowerCase().split(/[-_.]/);
    if (!parts.includes(qemu)) continue;
    try {
      if (/^enabled/.test(readFileSync(join(dir, n), 'utf8'))) return undefined;
    } catch {
      // a handler removed meanwhile
    }
  }
  return `no emulator (no binfmt_misc handler for ${qemu})`;
}

/** A snapshot made by {@link RuntimeSnapshotter}. */
export interface RuntimeSnapshot extends ActiveSnapshot {
  readonly id: string;
  /** The snapshot's private directory (bundle of a RUN). */
  readonly dir: string;
}

/** Snapshots as overlay mounts over the runtime's shared layer snapshots. */
export class RuntimeSnapshotter implements Snapshotter {
  private layers: SnapshotStore | undefined;
  private reaped = false;

  constructor(private readonly root: string, private readonly log: Logger = nullLogger, private readonly opts: BuildRuntimeOptions = {}) {}

  async prepare(image: Image, signal?: AbortSignal): Promise<RuntimeSnapshot> {
    const { SnapshotStore, reapStaleContainers, prepareRootfs, processStartTime, unmount } = await runtime();
    this.layers ??= new SnapshotStore(this.root);
    const layers = this.layers;
    if (!this.reaped) {
      this.reaped = true;
      await reapStaleContainers(this.root, this.log);
    }
    const id = randomBytes(32).toString('hex');
    const dir = join(this.root, 'containers', id);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      await fsp.writeFile(join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid) ?? '', cgroupName: `${this.opts.cgroupParent ?? 'tsbuild-build'}/${id}` }));
      const fs = await prepareRootfs(this.layers, image, dir, signal);
      let released = false;
      return {
        id,
        dir,
        rootfs: fs.rootfs,
        upper: fs.upper,
        // the committed upper becomes the layer's shared snapshot (overlay form already), as
        // containerd's overlay snapshotter does: no unpack of the new layer by the next step
        keepAsLayer: async (diffId: string) => {
          if (released) return;
          const target = layers.pathFor(diffId);
          if (await fsp.stat(target).then(() => true, () => false)) return;
          unmount(fs.rootfs);
          await fsp.mkdir(layers.dir, { recursive: true });
          // a snapshot that appeared meanwhile wins (rename fails); release removes our upper then
          await fsp.rename(fs.upper, target).catch(() => undefined);
        },
        release: async () => {
          if (released) return;
          released = true;
          try {
            await fs.cleanup();
          } finally {
            await fsp.rm(dir, { recursive: true, force: true });
          }
        },
      };
    } catch (e) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw e;
    }
  }
}

function exitCodeOf(r: { exitCode: number; signal?: string }): number {
  if (r.signal) {
    const n = (osConstants.signals as Record<string, number>)[r.signal];
    if (n) return 128 + n;
  }
  return r.exitCode;
}

/** Runs RUN processes as containers of tsbuild's runtime (native helper, cgroup, default seccomp and capabilities). */
export class RuntimeExecutor implements Executor {
  constructor(private readonly root: string, private readonly log: Logger = nullLogger, private readonly opts: BuildRuntimeOptions = {}) {}

  /** A foreign platform runs only through an enabled binfmt_misc handler (qemu-user-static and the like). */
  cannotRun(platform: Platform): string | undefined {
    return binfmtMissing(platform, this.opts.binfmtDir ?? '/proc/sys/fs/binfmt_misc');
  }

  async run(snapshot: ActiveSnapshot, req: ExecRequest, io: ProcessIO, signal?: AbortSignal): Promise<ExecResult> {
    const { createCgroupManager, createContainer, specFromImage } = await runtime();
    const snap = snapshot as RuntimeSnapshot;
    if (!snap.dir || !snap.id) throw new Error('the runtime executor needs a snapshot of the runtime snapshotter');
    const id = snap.id;
    const runDir = join(snap.dir, 'run');
    await fsp.mkdir(runDir, { recursive: true });
    const cleanups: (() => Promise<unknown>)[] = [() => fsp.rm(runDir, { recursive: true, force: true })];
    let primary: unknown;
    let result: ExecResult | undefined;
    try {
      // the working directory exists before the process starts (buildkit creates it)
      const cwd = req.cwd || '/';
      const owner = await resolveOwner(snap.rootfs, req.user).catch(() => ({ uid: 0, gid: 0 }));
      const cwdExisted = await fsp.lstat(join(snap.rootfs, cwd)).then(() => true, () => false);
      if (!cwdExisted) await mkdirAllInRoot(snap.rootfs, cwd, owner);

      const etcFiles = { hosts: join(runDir, 'hosts'), hostname: join(runDir, 'hostname'), resolvConf: join(runDir, 'resolv.conf') };
      await fsp.writeFile(etcFiles.hostname, `${BUILD_HOSTNAME}\n`);
      const hostHosts = req.network === 'host' ? await fsp.readFile('/etc/hosts', 'utf8').catch(() => undefined) : undefined;
      await fsp.writeFile(etcFiles.hosts, hostHosts ?? DEFAULT_HOSTS);
      await fsp.writeFile(etcFiles.resolvConf, await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
      const binds: BindMount[] = [];
      const tmpfs: TmpfsMount[] = [];
      for (const [i, f] of req.inlineFiles.entries()) {
        const host = join(runDir, `inline-${i}`);
        await fsp.writeFile(host, f.data, { mode: f.mode });
        binds.push({ source: host, destination: f.path, readonly: true });
      }
      let secretDir: string | undefined;
      for (const [i, m] of (req.mounts ?? []).entries()) {
        if (m.type === 'bind') binds.push({ source: m.source, destination: m.destination, readonly: m.readonly });
        else if (m.type === 'tmpfs') tmpfs.push({ destination: m.destination, options: ['exec', ...(m.size ? [`size=${m.size}`] : [])] });
        else {
          // secrets live in memory only: /dev/shm, removed when the RUN ends
          if (!secretDir) {
            secretDir = await fsp.mkdtemp(join(SECRETS_PARENT, this.opts.secretsPrefix ?? 'tsbuild-secrets-'));
            const d = secretDir;
            cleanups.push(() => fsp.rm(d, { recursive: true, force: true }));
          }
          const host = join(secretDir, String(i));
          await fsp.writeFile(host, m.data, { mode: 0o600 });
          await fsp.chown(host, m.uid, m.gid);
          await fsp.chmod(host, m.mode);
          binds.push({ source: host, destination: m.destination, readonly: true });
        }
      }
      const config: ImageConfig = {
        architecture: 'unused',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
        config: { Env: [...req.env], WorkingDir: cwd, User: req.user, Entrypoint: null, Cmd: [...req.args] },
      };
      const passwd = await readFileInRoot(snap.rootfs, '/etc/passwd');
      const group = await readFileInRoot(snap.rootfs, '/etc/group');
      const cgroupName = `${this.opts.cgroupParent ?? 'tsbuild-build'}/${id}`;
      const spec = specFromImage(config, {
        id,
        rootfs: snap.rootfs,
        readImageFile: (p) => (p === '/etc/passwd' ? passwd : group),
        hostname: BUILD_HOSTNAME,
        etcFiles,
        binds,
        tmpfs,
        hostCpus: availableParallelism(),
        network: req.network,
        seccomp: 'default',
        // Like BuildKit: RUN steps keep setuid semantics (no no_new_privs), whatever the user.
        noNewPrivileges: false,
        kernelRelease: release(),
        cgroupsPath: cgroupName,
        onWarning: (w) => this.log.debug(w),
      });
      await fsp.writeFile(join(runDir, 'config.json'), JSON.stringify(spec));
      const runtimePaths = [...new Set((spec.mounts ?? []).map((m) => posix.normalize(m.destination)))];

      const cgroup = await createCgroupManager({ name: cgroupName, resources: spec.linux?.resources ?? {} });
      cleanups.push(() => cgroup.remove());
      await cgroup.create();
      // What a later build's stale-container reaper needs when this process is SIGKILLed: the
      // cgroup's paths (they depend on this process's own cgroup) and the in-memory secrets.
      const ownerFile = join(snap.dir, 'owner.json');
      const ownerRec = JSON.parse(await fsp.readFile(ownerFile, 'utf8')) as Record<string, unknown>;
      await fsp.writeFile(ownerFile, JSON.stringify({ ...ownerRec, cgroup: { version: cgroup.version, paths: cgroup.paths() }, ...(secretDir ? { secretDir } : {}) }));
      const container = await createContainer({ id, bundle: runDir, stateRoot: join(this.root, 'run'), cgroup, cgroupName, logger: this.log, io: { stdin: 'null', stdout: 'pipe', stderr: 'pipe' } });
      cleanups.push(() => container.delete({ force: true }));
      const pump = (s: Readable | undefined, name: 'stdout' | 'stderr') =>
        new Promise<void>((resolve) => {
          if (!s) return resolve();
          s.on('data', (c: Buffer) => io.output(name, c));
          s.on('end', resolve);
          s.on('close', resolve);
          s.on('error', () => resolve());
        });
      const pumps = [pump(container.stdio?.stdout, 'stdout'), pump(container.stdio?.stderr, 'stderr')];
      const onAbort = () => void container.kill('SIGKILL').catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await container.start();
        const r = await container.wait();
        await Promise.all(pumps);
        result = { exitCode: exitCodeOf(r), ...(r.signal ? { signal: r.signal } : {}), runtimePaths };
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    } catch (e) {
      primary = e;
    }
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        if (!primary) primary = e;
      }
    }
    if (primary) throw primary;
    return result!;
  }
}

/** Base images from the local image store (by name, id or digest). */
export class StoreImageResolver implements ImageResolver {
  constructor(private readonly store: ImageStore) {}

  async resolve(ref: string, platform: Platform): Promise<Image> {
    return (await this.store.imageFor(ref, platform)).image;
  }
}

/** Options of {@link PullingImageResolver}. */
export interface PullingResolverOptions {
  /** `build --pull`: re-resolve every tag against its registry (the store copy is used when the digest is unchanged). */
  readonly always?: boolean;
  /** Connection options for a registry (credentials, TLS); loaded per registry host. */
  readonly remote: (registry: string) => Promise<RemoteOptions>;
  /** Where interrupted downloads are kept for the next run. */
  readonly partialDir?: string;
  /** Pull progress: one step per pulled base, its blobs as output lines. */
  readonly progress?: ProgressSink;
}

/**
 * Base images from the local store, pulled through the registry client when missing (or, with
 * `always`, when the registry's digest for the tag differs from the store's). A pulled image is
 * recorded under its name (a digest-only reference stays untagged), as `tsbuild pull` does.
 * References pinned with `@digest` never need re-resolving: the store copy is used when present.
 * The registry modules load only when a pull is needed.
 */
export class PullingImageResolver implements ImageResolver {
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly store: ImageStore, private readonly opts: PullingResolverOptions) {}

  async resolve(ref: string, platform: Platform, signal?: AbortSignal): Promise<Image> {
    let parsed: Reference | undefined;
    try {
      parsed = parseReference(ref);
    } catch {
      parsed = undefined; // an image id (prefix) or something else only the store can answer
    }
    if (!parsed) return (await this.store.imageFor(ref, platform)).image;
    const local = await this.store.imageFor(ref, platform).catch((e: unknown) => {
      if (e instanceof TsbuildError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    });
    if (local && (!this.opts.always || parsed.digest)) return local.image;
    const key = `${formatReference(parsed)} ${formatPlatform(platform)}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.pull(parsed, platform, local?.record.descriptor.digest, signal);
      this.inflight.set(key, p);
    }
    await p;
    return (await this.store.imageFor(ref, platform)).image;
  }

  private async pull(ref: Reference, platform: Platform, have: Digest | undefined, signal?: AbortSignal): Promise<void> {
    const { pullDetailed, remoteHead } = await import('../../../registry/remote/index.js');
    const name = formatReference(ref);
    const id = `pull:${name}:${formatPlatform(platform)}`;
    const step = `[internal] pull ${name}`;
    const progress = this.opts.progress;
    const line = (l: string) => progress?.({ kind: 'output', id, name: step, stream: 'stdout', chunk: Buffer.from(l + '\n') });
    const t0 = Date.now();
    progress?.({ kind: 'step', id, name: step, state: 'start' });
    try {
      const remote = { ...(await this.opts.remote(ref.registry)), ...(signal ? { signal } : {}) };
      if (have) {
        // --pull with a copy in the store: only a changed digest is fetched
        const head = await remoteHead(ref, remote);
        if (head.digest === have) {
          line(`resolve ${name}: ${head.digest} (unchanged, using the local copy)`);
          progress?.({ kind: 'step', id, name: step, state: 'done', ms: Date.now() - t0 });
          return;
        }
        line(`resolve ${name}: ${head.digest} (was ${have})`);
      }
      const res = await pullDetailed(ref, this.store.content, {
        ...remote,
        platform,
        ...(this.opts.partialDir ? { partialDir: this.opts.partialDir } : {}),
        onProgress: (e) => {
          if (e.state === 'done') line(`${e.digest} ${e.total} bytes ${e.skipped ? 'already present' : 'done'}`);
        },
      });
      const tagName = ref.tag ? formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag }) : undefined;
      if (tagName && !ref.digest) await this.store.tag(tagName, res.descriptor);
      else await this.store.addUntagged(res.descriptor);
      line(`pulled ${name}: ${res.descriptor.digest}`);
      progress?.({ kind: 'step', id, name: step, state: 'done', ms: Date.now() - t0 });
    } catch (e) {
      progress?.({ kind: 'step', id, name: step, state: 'error' });
      // the registry client's errors usually name the reference already
      if (e instanceof TsbuildError && e.message.includes(`${ref.registry}/${ref.repository}`)) throw e;
      throw new TsbuildError('PULL_FAILED', `pulling ${name}`, { cause: e });
    }
  }
}

/** `--ssh` agents ready for a build: id → agent socket; `close` stops the agents started for key files. */
export interface SshAgents {
  readonly agents: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

/**
 * Prepares `--ssh ID[=SOCKET|KEY[,KEY…]]` (docker buildx syntax): without a value the agent of
 * `$SSH_AUTH_SOCK`; a socket path is that agent; key files are loaded into a private `ssh-agent`
 * started for the build (stopped by `close`). Throws UsageError-like TsbuildErrors naming the spec.
 */
export async function prepareSshAgents(specs: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<SshAgents> {
  const agents = new Map<string, string>();
  const stops: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    for (const spec of specs) {
      const eq = spec.indexOf('=');
      const id = (eq < 0 ? spec : spec.slice(0, eq)).trim();
      if (!id || !/^[A-Za-z0-9_.-]+$/.test(id)) throw new TsbuildError('INVALID_ARGUMENT', `invalid --ssh ${JSON.stringify(spec)}: expected ID[=SOCKET|KEY[,KEY...]]`);
      const paths = eq < 0 ? [] : spec.slice(eq + 1).split(',').map((p) => p.trim()).filter(Boolean);
      if (paths.length === 0) {
        const sock = env['SSH_AUTH_SOCK'];
        if (!sock) throw new TsbuildError('INVALID_ARGUMENT', `--ssh ${id}: SSH_AUTH_SOCK is not set (start an ssh-agent or give a socket or key path: --ssh ${id}=PATH)`);
        paths.push(sock);
      }
      const stats = await Promise.all(paths.map((p) => fsp.stat(p).catch((e: unknown) => {
        throw new TsbuildError('INVALID_ARGUMENT', `--ssh ${id}: ${p}: ${(e as Error).message}`, { cause: e });
      })));
      if (stats.length === 1 && stats[0]!.isSocket()) {
        agents.set(id, paths[0]!);
        continue;
      }
      if (stats.some((s) => s.isSocket())) throw new TsbuildError('INVALID_ARGUMENT', `--ssh ${id}: give one agent socket or key files, not both`);
      const agent = await startAgent(id);
      stops.push(agent.stop);
      for (const key of paths) await runQuiet('ssh-add', ['-q', key], { ...env, SSH_AUTH_SOCK: agent.socket }, `--ssh ${id}: loading key ${key}`);
      agents.set(id, agent.socket);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { agents, close };
}

/** Starts `ssh-agent -D -a SOCKET` in a private directory and waits for its socket. */
async function startAgent(id: string): Promise<{ socket: string; stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const dir = await fsp.mkdtemp(join(tmpdir(), 'tsbuild-ssh-agent-'));
  const socket = join(dir, 'agent.sock');
  const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await fsp.rm(dir, { recursive: true, force: true });
  };
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new TsbuildError('UNAVAILABLE', `--ssh ${id}: starting ssh-agent: ${e.message}`, { cause: e })));
    child.once('close', (code) => reject(new TsbuildError('UNAVAILABLE', `--ssh ${id}: ssh-agent exited with code ${code}: ${err.trim()}`)));
  });
  failed.catch(() => undefined);
  try {
    for (let i = 0; ; i++) {
      if (existsSync(socket)) break;
      if (i > 200) throw new TsbuildError('UNAVAILABLE', `--ssh ${id}: ssh-agent did not create its socket`);
      await Promise.race([new Promise((r) => setTimeout(r, 25)), failed]);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { socket, stop };
}

async function runQuiet(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, what: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    const p = spawn(cmd, [...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    p.once('error', (e) => reject(new TsbuildError('UNAVAILABLE', `${what}: ${e.message}`, { cause: e })));
    p.once('close', (code) => (code === 0 ? resolve() : reject(new TsbuildError('INVALID_ARGUMENT', `${what}: ${cmd} exited with code ${code}: ${err.trim()}`))));
  });
}
