/**
 * The benchmark cases, as data: each names a piece of work, how to prepare its inputs, the tsbuild
 * command and the peer command that does the same work. Add rows here (runtime, build, push/pull).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needTool, needTsbuildCommand, REPO_ROOT, tsbuildStep, type BenchCase, type CaseContext } from './harness.js';
import { RANDOM_TAG, randomLayout } from './random-image.js';
import { sh } from './setup.js';
import { needRegistry, startBenchRegistry, type BenchRegistry } from './registry.js';

const COMPRESS = fileURLToPath(new URL('./compress.js', import.meta.url));
const IMAGE = 'bench/debian:bookworm';

/** The Debian minbase rootfs tar: the tarball cache of testdata/images/debian-rootfs.sh, made if missing. */
function debianTar(ctx: CaseContext): string | { skip: string } {
  const cache = join(process.env['TSBUILD_TEST_CACHE'] ?? '/var/cache/tsbuild-test', 'debian-bookworm-minbase.tar');
  if (existsSync(cache)) return cache;
  if (process.getuid?.() !== 0) return { skip: 'making the debian rootfs needs root' };
  const r = spawnSync('bash', [join(REPO_ROOT, 'testdata/images/debian-rootfs.sh'), join(ctx.work, 'debian-rootfs')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !existsSync(cache)) return { skip: 'debian-rootfs.sh did not produce its tarball cache' };
  return cache;
}

const v = (ctx: CaseContext, k: string): string => ctx.vars.get(k)!;

/** Runs a setup command; a failure fails the case (it is not a missing capability). */
/** Shared setup of the save/load cases: Debian imported into a tsbuild store, saved, and as an OCI dir. */
async function debianImage(ctx: CaseContext): Promise<string | undefined> {
  const tar = debianTar(ctx);
  if (typeof tar !== 'string') return tar.skip;
  const root = join(ctx.work, 'store');
  ctx.vars.set('root', root);
  ctx.vars.set('archive', join(ctx.work, 'debian-archive.tar'));
  ctx.vars.set('oci', join(ctx.work, 'oci'));
  sh(ctx, 'tsbuild import', tsbuildStep(['--root', root, 'import', tar, IMAGE]));
  sh(ctx, 'tsbuild save', tsbuildStep(['--root', root, 'save', '-o', v(ctx, 'archive'), IMAGE]));
  sh(ctx, 'skopeo copy to oci', { cmd: 'skopeo', args: ['copy', '-q', `docker-archive:${v(ctx, 'archive')}`, `oci:${v(ctx, 'oci')}:bookworm`] });
  return undefined;
}

const rmOut = (k: string) => async (ctx: CaseContext): Promise<void> => rm(v(ctx, k), { recursive: true, force: true });

/** The registries started by the transfer cases' setup, by work dir (stopped by teardown). */
const registries = new Map<string, BenchRegistry>();
const registryOf = (ctx: CaseContext): BenchRegistry => registries.get(ctx.work)!;

/** The image a transfer case moves: the Debian base image, or the ~1 GiB random image. */
type Payload = 'debian' | 'random-1g';
const RANDOM_IMAGE = 'bench/random:1g';

/**
 * Shared setup of the transfer cases: the image in a tsbuild store (`root`, named `image`) and,
 * with the same blobs, in an OCI layout (`oci`, tag `tag`); an empty local registry (`host`).
 */
async function transferSetup(ctx: CaseContext, payload: Payload): Promise<string | undefined> {
  const root = join(ctx.work, 'store');
  const oci = join(ctx.work, 'oci');
  ctx.vars.set('root', root);
  ctx.vars.set('oci', oci);
  if (payload === 'debian') {
    const tar = debianTar(ctx);
    if (typeof tar !== 'string') return tar.skip;
    ctx.vars.set('image', IMAGE);
    ctx.vars.set('tag', 'bookworm');
    sh(ctx, 'tsbuild import', tsbuildStep(['--root', root, 'import', tar, IMAGE]));
    sh(ctx, 'tsbuild copy to oci', tsbuildStep(['--root', root, 'copy', '-q', IMAGE, `oci:${oci}:bookworm`]));
  } else {
    const layout = await randomLayout();
    ctx.vars.set('image', RANDOM_IMAGE);
    ctx.vars.set('tag', RANDOM_TAG);
    // the cached layout is read-only input: the tsbuild side gets its own store, the peer a copy
    sh(ctx, 'tsbuild copy from oci', tsbuildStep(['--root', root, 'copy', '-q', `oci:${layout}:${RANDOM_TAG}`, RANDOM_IMAGE]));
    sh(ctx, 'copy the layout', { cmd: 'cp', args: ['-a', layout, oci] });
  }
  const reg = await startBenchRegistry(join(ctx.work, 'registry'));
  registries.set(ctx.work, reg);
  ctx.vars.set('host', reg.host);
  return undefined;
}

async function transferTeardown(ctx: CaseContext): Promise<void> {
  await registries.get(ctx.work)?.stop();
  registries.delete(ctx.work);
}

/** The image in the registry for the pull cases: pushed once by tsbuild. */
function remoteRef(ctx: CaseContext): string {
  return `${v(ctx, 'host')}/bench/pull:v1`;
}
async function pushOnce(ctx: CaseContext): Promise<void> {
  sh(ctx, 'tsbuild push', tsbuildStep(['--root', v(ctx, 'root'), 'push', '-q', v(ctx, 'image'), remoteRef(ctx)]));
}

/** Podman with all of its state in the case's work dir (removed before every run and at the end). */
function podmanArgs(ctx: CaseContext): string[] {
  const base = join(ctx.work, 'podman');
  // podman refuses a runroot longer than 50 characters: it gets a short temp dir of its own
  return ['--root', join(base, 'root'), '--runroot', v(ctx, 'podman-run'), '--tmpdir', join(base, 'tmp'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs', '--storage-driver', 'overlay'];
}
async function resetPodman(ctx: CaseContext): Promise<void> {
  const base = join(ctx.work, 'podman');
  if (existsSync(base)) spawnSync('podman', [...podmanArgs(ctx), 'rmi', '-a', '-f'], { stdio: 'ignore' });
  spawnSync('umount', ['-R', join(base, 'root', 'overlay')], { stdio: 'ignore' });
  await rm(base, { recursive: true, force: true });
  await rm(v(ctx, 'podman-run'), { recursive: true, force: true });
  await mkdir(v(ctx, 'podman-run'), { recursive: true });
}

const transferNeeds = (cmd: string) => (): string | undefined => needRegistry() ?? needTsbuildCommand(cmd) ?? needTsbuildCommand('copy');

function pushCase(payload: Payload, what: string): BenchCase {
  return {
    name: `push-${payload}`,
    description: `push ${what} from local storage to an empty local registry (docker-registry 2.8, plain HTTP, restarted empty before every run): tsbuild from its store, skopeo from an OCI layout holding the same blobs`,
    setup: (ctx) => transferSetup(ctx, payload),
    teardown: transferTeardown,
    tsbuild: {
      tool: 'tsbuild',
      needs: transferNeeds('push'),
      prepare: (ctx) => registryOf(ctx).restart(),
      step: (ctx) => tsbuildStep(['--root', v(ctx, 'root'), 'push', '-q', v(ctx, 'image'), `${v(ctx, 'host')}/bench/push:v1`]),
    },
    peer: {
      tool: 'skopeo',
      needs: () => needTool('skopeo'),
      prepare: (ctx) => registryOf(ctx).restart(),
      step: (ctx) => ({ cmd: 'skopeo', args: ['copy', '-q', '--dest-tls-verify=false', `oci:${v(ctx, 'oci')}:${v(ctx, 'tag')}`, `docker://${v(ctx, 'host')}/bench/push:v1`] }),
    },
  };
}

function pullCase(payload: Payload, what: string): BenchCase {
  return {
    name: `pull-${payload}`,
    description: `pull ${what} from a local registry into empty local storage: tsbuild into a fresh store (blobs verified, not unpacked), skopeo into a fresh OCI layout`,
    setup: async (ctx) => {
      const why = await transferSetup(ctx, payload);
      if (!why) await pushOnce(ctx);
      ctx.vars.set('dst-t', join(ctx.work, 'pull-store'));
      ctx.vars.set('dst-p', join(ctx.work, 'pull-oci'));
      return why;
    },
    teardown: transferTeardown,
    tsbuild: {
      tool: 'tsbuild',
      needs: transferNeeds('pull'),
      prepare: rmOut('dst-t'),
      step: (ctx) => tsbuildStep(['--root', v(ctx, 'dst-t'), 'pull', '-q', remoteRef(ctx)]),
      output: (ctx) => v(ctx, 'dst-t'),
    },
    peer: {
      tool: 'skopeo',
      needs: () => needTool('skopeo'),
      prepare: rmOut('dst-p'),
      step: (ctx) => ({ cmd: 'skopeo', args: ['copy', '-q', '--src-tls-verify=false', `docker://${remoteRef(ctx)}`, `oci:${v(ctx, 'dst-p')}:v1`] }),
      output: (ctx) => v(ctx, 'dst-p'),
    },
  };
}

function podmanPullCase(payload: Payload, what: string): BenchCase {
  return {
    name: `pull-${payload}-podman`,
    description: `pull ${what} from a local registry: tsbuild into a fresh store (verified, not unpacked) vs podman pull into fresh storage (overlay driver: verified and unpacked into layer directories), podman state in the work dir`,
    setup: async (ctx) => {
      const why = await transferSetup(ctx, payload);
      if (!why) await pushOnce(ctx);
      ctx.vars.set('dst-t', join(ctx.work, 'pull-store'));
      ctx.vars.set('podman-run', await mkdtemp(join(tmpdir(), 'tsbpm-')));
      return why;
    },
    teardown: async (ctx) => {
      if (ctx.vars.has('podman-run')) {
        await resetPodman(ctx);
        await rm(v(ctx, 'podman-run'), { recursive: true, force: true });
      }
      await transferTeardown(ctx);
    },
    tsbuild: {
      tool: 'tsbuild',
      needs: transferNeeds('pull'),
      prepare: rmOut('dst-t'),
      step: (ctx) => tsbuildStep(['--root', v(ctx, 'dst-t'), 'pull', '-q', remoteRef(ctx)]),
      output: (ctx) => v(ctx, 'dst-t'),
    },
    peer: {
      tool: 'podman',
      needs: () => needTool('podman'),
      prepare: resetPodman,
      step: (ctx) => ({ cmd: 'podman', args: [...podmanArgs(ctx), 'pull', '-q', '--tls-verify=false', remoteRef(ctx)] }),
      output: (ctx) => join(ctx.work, 'podman', 'root'),
    },
  };
}

/** The transfer cases (push, pull, pull vs podman) for both payloads. */
const TRANSFER_CASES: readonly BenchCase[] = [
  pushCase('debian', 'the Debian base image (tsbuild import of the minbase rootfs, one gzip layer)'),
  pullCase('debian', 'the Debian base image'),
  podmanPullCase('debian', 'the Debian base image'),
  pushCase('random-1g', 'a 1 GiB image (4 layers of 256 MiB random bytes, gzip)'),
  pullCase('random-1g', 'the 1 GiB random image'),
  podmanPullCase('random-1g', 'the 1 GiB random image'),
];

/** Every case, in the order they run. */
export const CASES: readonly BenchCase[] = [
  {
    name: 'save-debian',
    description: 'write the Debian image from the local store as a docker-archive tarball (tsbuild writes the stored gzip layer as is; skopeo\'s docker-archive writes it uncompressed, as docker save does)',
    setup: async (ctx) => {
      ctx.vars.set('out-t', join(ctx.work, 'save-tsbuild.tar'));
      ctx.vars.set('out-p', join(ctx.work, 'save-skopeo.tar'));
      return debianImage(ctx);
    },
    tsbuild: {
      tool: 'tsbuild',
      needs: () => needTsbuildCommand('import') ?? needTsbuildCommand('save'),
      prepare: rmOut('out-t'),
      step: (ctx) => tsbuildStep(['--root', v(ctx, 'root'), 'save', '-o', v(ctx, 'out-t'), IMAGE]),
      output: (ctx) => v(ctx, 'out-t'),
    },
    peer: {
      tool: 'skopeo',
      needs: () => needTool('skopeo'),
      prepare: rmOut('out-p'),
      step: (ctx) => ({ cmd: 'skopeo', args: ['copy', '-q', `oci:${v(ctx, 'oci')}:bookworm`, `docker-archive:${v(ctx, 'out-p')}:${IMAGE}`] }),
      output: (ctx) => v(ctx, 'out-p'),
    },
  },
  {
    name: 'load-debian',
    description: 'read a docker-archive tarball of the Debian image (written by tsbuild save) into a fresh tsbuild store / a fresh OCI layout',
    setup: async (ctx) => {
      ctx.vars.set('dst-t', join(ctx.work, 'load-store'));
      ctx.vars.set('dst-p', join(ctx.work, 'load-oci'));
      return debianImage(ctx);
    },
    tsbuild: {
      tool: 'tsbuild',
      needs: () => needTsbuildCommand('import') ?? needTsbuildCommand('save') ?? needTsbuildCommand('load'),
      prepare: rmOut('dst-t'),
      step: (ctx) => tsbuildStep(['--root', v(ctx, 'dst-t'), 'load', '-i', v(ctx, 'archive')]),
      output: (ctx) => v(ctx, 'dst-t'),
    },
    peer: {
      tool: 'skopeo',
      needs: () => needTool('skopeo'),
      prepare: rmOut('dst-p'),
      step: (ctx) => ({ cmd: 'skopeo', args: ['copy', '-q', `docker-archive:${v(ctx, 'archive')}`, `oci:${v(ctx, 'dst-p')}:bookworm`] }),
      output: (ctx) => v(ctx, 'dst-p'),
    },
  },
  ...(['gzip', 'zstd'] as const).map((algo): BenchCase => {
    const peer = algo === 'gzip' ? { tool: 'pigz', args: ['-6', '-p2', '-c'] } : { tool: 'zstd', args: ['-3', '-T2', '-c', '-q'] };
    const level = algo === 'gzip' ? '6' : '3';
    return {
      name: `compress-${algo}-debian`,
      description: `${algo} level ${level} of the Debian rootfs tar (about 120 MiB), stdin to a file`,
      setup: async (ctx) => {
        const tar = debianTar(ctx);
        if (typeof tar !== 'string') return tar.skip;
        ctx.vars.set('in', tar);
        return undefined;
      },
      tsbuild: {
        tool: 'tsbuild',
        needs: () => {
          if (!existsSync(COMPRESS)) return `${COMPRESS} is missing (npm run build)`;
          const r = spawnSync(process.execPath, [COMPRESS, '--probe'], { encoding: 'utf8' });
          return r.status === 0 ? undefined : 'tsbuild compressStream (src/oci/tar) is not available';
        },
        step: (ctx) => ({ cmd: process.execPath, args: [COMPRESS, algo, level], stdin: v(ctx, 'in'), stdout: join(ctx.work, `out-tsbuild.${algo}`) }),
      },
      peer: {
        tool: peer.tool,
        needs: () => needTool(peer.tool),
        step: (ctx) => ({ cmd: peer.tool, args: peer.args, stdin: v(ctx, 'in'), stdout: join(ctx.work, `out-peer.${algo}`) }),
      },
    };
  }),
  ...TRANSFER_CASES,
  ...(await import('./cases-runtime.js')).RUNTIME_CASES,
  ...(await import('./cases-build.js')).BUILD_CASES,
];
