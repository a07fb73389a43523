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

// ---- (c) detached lifecycle and networking, vs podman (same busybox image loaded in both)

/** A TCP port on 127.0.0.1 nothing listens on now (each side gets its own, fixed for the case). */
function freePort(): number {
  const r = spawnSync(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** Setup of the podman cases: the tsbuild store, the archive loaded into a private podman storage, one probe run. */
async function podmanSetup(ctx: CaseContext, probe: string[]): Promise<string | undefined> {
  const why = storeSetup(ctx);
  if (why) return why;
  sh(ctx, 'podman load', { cmd: 'podman', args: podmanArgs(ctx, 'load', '-q', '-i', v(ctx, 'archive')) });
  const r = spawnSync('podman', podmanArgs(ctx, ...probe), { encoding: 'utf8' });
  if (r.status !== 0) return `podman ${probe.join(' ')} fails on this host: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
  spawnSync('podman', podmanArgs(ctx, 'rm', '-a', '-f'), { stdio: 'ignore' });
  ctx.vars.set('tsbuildPort', String(freePort()));
  ctx.vars.set('podmanPort', String(freePort()));
  return undefined;
}

async function podmanTeardown(ctx: CaseContext): Promise<void> {
  spawnSync(process.execPath, [TSBUILD_MAIN_PATH, '--root', v(ctx, 'root'), 'rm', '-f', 'bench-fb'], { stdio: 'ignore' });
  spawnSync('podman', podmanArgs(ctx, 'rm', '-a', '-f'), { stdio: 'ignore' });
  spawnSync('podman', podmanArgs(ctx, 'rmi', '-a', '-f'), { stdio: 'ignore' });
  await unmountUnder(ctx.work);
}

const TSBUILD_MAIN_PATH = tsbuildStep([]).args[0]!;
const q = (xs: readonly string[]) => xs.map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' ');

/** `run -d` then `stop -t 0` then `rm` of one container, as one shell step (docker CLI semantics on both sides). */
function cycleCase(network: 'none' | 'bridge'): BenchCase {
  const pub = (port: string) => (network === 'bridge' ? ['-p', `127.0.0.1:${port}:80`] : ['--network', 'none']);
  return {
    // short names: podman refuses a runroot path over 50 characters (the work dir carries the name)
    name: `cycle-${network}`,
    description: `tsbuild run -d + stop -t 0 + rm of a busybox container (httpd -f), ${network === 'none' ? 'network none' : 'on the default CNI bridge with -p 127.0.0.1:PORT:80'}, vs the same podman commands (podman: private storage, image loaded from tsbuild save)`,
    setup: (ctx) => podmanSetup(ctx, ['run', '-d', ...(network === 'none' ? ['--network', 'none'] : ['-p', `127.0.0.1:${freePort()}:80`]), IMAGE, 'httpd', '-f', '-p', '80']),
    teardown: podmanTeardown,
    tsbuild: {
      tool: 'tsbuild',
      needs: () => needRoot() ?? needTsbuildCommand('run'),
      step: (ctx) => {
        const t = q([process.execPath, TSBUILD_MAIN_PATH, '--root', v(ctx, 'root')]);
        return { cmd: 'sh', args: ['-ec', `id=$(${t} run -d ${q(pub(v(ctx, 'tsbuildPort')))} ${IMAGE} httpd -f -p 80); ${t} stop -t 0 "$id" >/dev/null; ${t} rm "$id" >/dev/null`] };
      },
    },
    peer: {
      tool: 'podman',
      needs: () => needTool('podman'),
      step: (ctx) => {
        const p = q(['podman', ...podmanArgs(ctx)]);
        return { cmd: 'sh', args: ['-ec', `id=$(${p} run -d ${q(pub(v(ctx, 'podmanPort')))} ${IMAGE} httpd -f -p 80); ${p} stop -t 0 "$id" >/dev/null; ${p} rm "$id" >/dev/null`] };
      },
    },
  };
}

/** `run -d --rm -p` of busybox httpd until curl gets the first response (the container is removed untimed before the next run). */
const firstByte: BenchCase = {
  name: 'first-byte',
  description: 'tsbuild run -d --rm -p 127.0.0.1:PORT:80 busybox httpd, timed until curl gets its first HTTP response, vs podman run -d --rm -p (the container is stopped untimed before the next run)',
  setup: (ctx) => podmanSetup(ctx, ['run', '--rm', '-p', `127.0.0.1:${freePort()}:80`, IMAGE, 'true']),
  teardown: podmanTeardown,
  tsbuild: {
    tool: 'tsbuild',
    needs: () => needRoot() ?? needTsbuildCommand('run') ?? needTool('curl'),
    prepare: async (ctx) => { spawnSync(process.execPath, [TSBUILD_MAIN_PATH, '--root', v(ctx, 'root'), 'rm', '-f', 'bench-fb'], { stdio: 'ignore' }); },
    step: (ctx) => {
      const t = q([process.execPath, TSBUILD_MAIN_PATH, '--root', v(ctx, 'root')]);
      const port = v(ctx, 'tsbuildPort');
      return { cmd: 'sh', args: ['-ec', `${t} run -d --rm --name bench-fb -p 127.0.0.1:${port}:80 ${IMAGE} httpd -f -p 80 -h / >/dev/null; until curl -s -o /dev/null http://127.0.0.1:${port}/; do sleep 0.005; done`] };
    },
  },
  peer: {
    tool: 'podman',
    needs: () => needTool('podman') ?? needTool('curl'),
    prepare: async (ctx) => { spawnSync('podman', podmanArgs(ctx, 'rm', '-f', '-t', '0', 'bench-fb'), { stdio: 'ignore' }); },
    step: (ctx) => {
      const p = q(['podman', ...podmanArgs(ctx)]);
      const port = v(ctx, 'podmanPort');
      return { cmd: 'sh', args: ['-ec', `${p} run -d --rm --name bench-fb -p 127.0.0.1:${port}:80 ${IMAGE} httpd -f -p 80 -h / >/dev/null; until curl -s -o /dev/null http://127.0.0.1:${port}/; do sleep 0.005; done`] };
    },
  },
};

/** Every runtime case, in the order they run. */
export const RUNTIME_CASES: readonly BenchCase[] = [runtimeCase('crun'), runtimeCase('runc'), runPodman, runDocker, cycleCase('none'), cycleCase('bridge'), firstByte];
