/**
 * Runtime benchmark cases: starting a container that runs `/bin/true`.
 *
 * - `runtime-run-crun`, `runtime-run-runc`: `tsbuild runtime run` of a busybox bundle against
 *   `crun run` and `runc run` with the same config.json (the bundle is made once, by `runc spec`
 *   with the process set to `/bin/true` and no terminal).
 * - `run-podman`, `run-docker`: `tsbuild run --rm busybox true` from the local store against
 *   `podman run --rm --network none` (podman loads the image from `tsbuild save`; its storage lives
 *   in the case's work dir through --root/--runroot) and against `docker run --rm --network none`
 *   on a private dockerd started by setup (skipped when no Docker engine is installed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DOCKER, dockerArgs, sh, startDockerd, stopDockerd, unmountUnder } from './setup.js';
import { needTool, needTsbuildCommand, REPO_ROOT, tsbuildStep, type BenchCase, type CaseContext } from './harness.js';

/** The image name in every store (full form, so podman and docker need no short-name resolution). */
const IMAGE = 'docker.io/library/busybox:latest';

const v = (ctx: CaseContext, k: string): string => ctx.vars.get(k)!;

/** Runs a setup command; a failure fails the case (it is not a missing capability). */
function needRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'running containers needs root';
}

/** A busybox rootfs made by testdata/images/busybox-rootfs.sh in the case's work dir. */
function busyboxRootfs(ctx: CaseContext, dir: string): string | undefined {
  if (!existsSync('/bin/busybox')) return '/bin/busybox (busybox-static) is not installed';
  sh(ctx, 'busybox-rootfs.sh', { cmd: 'bash', args: [join(REPO_ROOT, 'testdata/images/busybox-rootfs.sh'), dir] });
  return undefined;
}

// ---- (a) the OCI runtime CLI on one bundle

/** Setup of the runtime-run cases: bundle/{rootfs,config.json} and a state root per runtime. */
async function bundleSetup(ctx: CaseContext): Promise<string | undefined> {
  const bundle = join(ctx.work, 'bundle');
  const why = busyboxRootfs(ctx, join(bundle, 'rootfs'));
  if (why) return why;
  sh(ctx, 'runc spec', { cmd: 'runc', args: ['spec', '--bundle', bundle] });
  const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] } };
  config.process.terminal = false;
  config.process.args = ['/bin/true'];
  await writeFile(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  ctx.vars.set('bundle', bundle);
  return undefined;
}

/** crun refuses hybrid hosts until hugetlb has a v1 hierarchy (host notes); say so instead of failing. */
function hybridCrunProblem(): string | undefined {
  const unified = existsSync('/sys/fs/cgroup/unified/cgroup.controllers');
  const hugetlb = existsSync('/sys/fs/cgroup/hugetlb/cgroup.procs');
  return unified && !hugetlb ? 'crun needs the hugetlb v1 hierarchy on this hybrid cgroup host (mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb)' : undefined;
}

function runtimeCase(peer: 'crun' | 'runc'): BenchCase {
  return {
    name: `runtime-run-${peer}`,
    description: `OCI runtime CLI: create, start, wait and delete a busybox bundle running /bin/true (same config.json from runc spec: all namespaces incl. network, default caps, masked paths, cgroup), vs ${peer} run`,
    setup: async (ctx) => (await bundleSetup(ctx)) ?? (peer === 'crun' ? hybridCrunProblem() : undefined),
    teardown: async (ctx) => unmountUnder(ctx.work),
    tsbuild: {
      tool: 'tsbuild',
      needs: () => needRoot() ?? needTsbuildCommand('runtime'),
      step: (ctx) => tsbuildStep(['--root', join(ctx.work, 'tsbuild-root'), 'runtime', 'run', '--bundle', v(ctx, 'bundle'), 'bench-t']),
    },
    peer: {
      tool: peer,
      needs: () => needTool(peer),
      step: (ctx) => ({ cmd: peer, args: ['--root', join(ctx.work, `${peer}-state`), 'run', '--bundle', v(ctx, 'bundle'), `bench-${peer}`] }),
    },
  };
}

// ---- (b) run an image from the local store

/** Setup shared by run-podman and run-docker: busybox imported into a tsbuild store and saved as a docker-archive. */
function storeSetup(ctx: CaseContext): string | undefined {
  const why = busyboxRootfs(ctx, join(ctx.work, 'rootfs'));
  if (why) return why;
  const root = join(ctx.work, 'store');
  ctx.vars.set('root', root);
  ctx.vars.set('archive', join(ctx.work, 'busybox.tar'));
  sh(ctx, 'tsbuild import', tsbuildStep(['--root', root, 'import', join(ctx.work, 'rootfs'), IMAGE]));
  sh(ctx, 'tsbuild save', tsbuildStep(['--root', root, 'save', '-o', v(ctx, 'archive'), IMAGE]));
  return undefined;
}

const tsbuildRun: BenchCase['tsbuild'] = {
  tool: 'tsbuild',
  needs: () => needRoot() ?? needTsbuildCommand('run'),
  step: (ctx) => tsbuildStep(['--root', v(ctx, 'root'), 'run', '--rm', IMAGE, 'true']),
};

const podmanArgs = (ctx: CaseContext, ...args: string[]): string[] => ['--root', join(ctx.work, 'podman', 'root'), '--runroot', join(ctx.work, 'podman', 'run'), ...args];

const runPodman: BenchCase = {
  name: 'run-podman',
  description: 'run /bin/true in a new container from the busybox image in the local store, network none, removed afterwards (podman: its own storage in a temp dir, image loaded from tsbuild save)',
  setup: async (ctx) => {
    const why = storeSetup(ctx);
    if (why) return why;
    sh(ctx, 'podman load', { cmd: 'podman', args: podmanArgs(ctx, 'load', '-q', '-i', v(ctx, 'archive')) });
    const r = spawnSync('podman', podmanArgs(ctx, 'run', '--rm', '--network', 'none', IMAGE, 'true'), { encoding: 'utf8' });
    if (r.status !== 0) return `podman run fails on this host: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
    return undefined;
  },
  teardown: async (ctx) => {
    spawnSync('podman', podmanArgs(ctx, 'rm', '-a', '-f'), { stdio: 'ignore' });
    spawnSync('podman', podmanArgs(ctx, 'rmi', '-a', '-f'), { stdio: 'ignore' });
    await unmountUnder(ctx.work);
  },
  tsbuild: tsbuildRun,
  peer: {
    tool: 'podman',
    needs: () => needTool('podman'),
    step: (ctx) => ({ cmd: 'podman', args: podmanArgs(ctx, 'run', '--rm', '--network', 'none', IMAGE, 'true') }),
  },
};


const runDocker: BenchCase = {
  name: 'run-docker',
  description: 'run /bin/true in a new container from the busybox image, network none, removed afterwards (docker: a private dockerd with its data root in a temp dir, image loaded from tsbuild save)',
  setup: async (ctx) => {
    const down = await startDockerd(ctx);
    if (down) return down;
    const why = storeSetup(ctx);
    if (why) return why;
    sh(ctx, 'docker load', { cmd: DOCKER, args: dockerArgs(ctx, 'load', '-q', '-i', v(ctx, 'archive')) });
    const r = spawnSync(DOCKER, dockerArgs(ctx, 'run', '--rm', '--network', 'none', IMAGE, 'true'), { encoding: 'utf8' });
    if (r.status !== 0) return `docker run fails on this host: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
    return undefined;
  },
  teardown: async (ctx) => {
    await stopDockerd(ctx);
    await unmountUnder(ctx.work);
  },
  tsbuild: tsbuildRun,
  peer: {
    tool: 'docker',
    needs: () => needTool('dockerd') ?? needTool(DOCKER),
    step: (ctx) => ({ cmd: DOCKER, args: dockerArgs(ctx, 'run', '--rm', '--network', 'none', IMAGE, 'true') }),
  },
};

/** Every runtime case, in the order they run. */
export const RUNTIME_CASES: readonly BenchCase[] = [runtimeCase('crun'), runtimeCase('runc'), runPodman, runDocker];
