/**
 * Build benchmark cases: `tsbuild build` against `docker build` (BuildKit, Debian docker.io 20.10
 * on a private dockerd started by setup) and `buildah build` (vfs storage in the case's work dir),
 * each in three states:
 *
 * - `cold`: `--no-cache` (every step runs; the base is already local),
 * - `cached`: the same context again (every step a cache hit),
 * - `touched`: one copied file changed before each run (untimed), so its COPY and later steps run.
 *
 * Projects: `tiny` (busybox; RUN echo; COPY a file), `medium` (Debian bookworm minbase from
 * testdata/images/debian-rootfs.sh; apt-get install hello from the machine's mirror; COPY a
 * 2000-file dir; ENV/WORKDIR/CMD; the touched file is one of the 2000) and `multistage` (stage 1
 * writes 50 MB from /dev/urandom with dd; stage 2 copies it). The base is imported into each
 * engine from one tsbuild save under the same name.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER, dockerArgs, sh, startDockerd, stopDockerd, unmountUnder } from './setup.js';
import { needTool, needTsbuildCommand, REPO_ROOT, tsbuildStep, type BenchCase, type CaseContext, type Side } from './harness.js';

const IMAGE = 'localhost/bench/busybox:latest';
const DEBIAN = 'localhost/bench/debian:bookworm';
const v = (ctx: CaseContext, k: string): string => ctx.vars.get(k)!;

type Project = 'tiny' | 'medium' | 'multistage';
type State = 'cold' | 'cached' | 'touched';
type Peer = 'docker' | 'buildah';

const DOCKERFILES: Record<Project, string> = {
  tiny: `FROM ${IMAGE}\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n`,
  medium: `FROM ${DEBIAN}\nENV DEBIAN_FRONTEND=noninteractive\nRUN apt-get update && apt-get install -y --no-install-recommends hello && rm -rf /var/lib/apt/lists/*\nCOPY files/ /srv/files/\nCOPY app.txt /srv/app.txt\nENV APP_HOME=/srv\nWORKDIR /srv\nCMD ["hello"]\n`,
  multistage: `FROM ${IMAGE} AS gen\nRUN dd if=/dev/urandom of=/big bs=1M count=50 2>/dev/null\nCOPY app.txt /app.txt\n\nFROM ${IMAGE}\nCOPY --from=gen /big /big\nCOPY app.txt /app.txt\n`,
};

/** Writes the project's context: Dockerfile and the copied file. */
function writeContext(dir: string, project: Project): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILES[project]);
  writeFileSync(join(dir, 'app.txt'), 'version 0\n');
  if (project === 'medium') {
    mkdirSync(join(dir, 'files'), { recursive: true });
    for (let i = 0; i < 2000; i++) writeFileSync(join(dir, 'files', `f${String(i).padStart(4, '0')}.txt`), `file ${i}\n`.repeat(1 + (i % 50)));
  }
}

/** The copied file a `touched` run changes. */
const TOUCHED: Record<Project, string> = { tiny: 'app.txt', medium: 'files/f1000.txt', multistage: 'app.txt' };

let touches = 0;
/** The untimed change before a `touched` run: new content in one copied file. */
const touch =
  (project: Project) =>
  (ctx: CaseContext): Promise<void> => {
    writeFileSync(join(v(ctx, 'ctx'), TOUCHED[project]), `version ${++touches} ${process.hrtime.bigint()}\n`);
    return Promise.resolve();
  };

const buildahArgs = (ctx: CaseContext, ...args: string[]): string[] => ['--root', join(ctx.work, 'buildah', 'root'), '--runroot', join(ctx.work, 'buildah', 'run'), '--storage-driver', 'vfs', ...args];

function buildCase(project: Project, state: State, peer: Peer): BenchCase {
  const noCache = state === 'cold';
  const prepare = state === 'touched' ? touch(project) : undefined;
  const base = project === 'medium' ? DEBIAN : IMAGE;
  const tsbuild: Side = {
    tool: 'tsbuild',
    needs: () => (process.getuid?.() === 0 ? undefined : 'builds need root') ?? needTsbuildCommand('build'),
    ...(prepare ? { prepare } : {}),
    step: (ctx) => tsbuildStep(['--root', v(ctx, 'root'), 'build', '--progress', 'quiet', ...(noCache ? ['--no-cache'] : []), '-t', 'bench/out:latest', v(ctx, 'ctx')]),
  };
  const other: Side =
    peer === 'docker'
      ? {
          tool: 'docker build',
          needs: () => needTool('dockerd') ?? needTool(DOCKER),
          ...(prepare ? { prepare } : {}),
          step: (ctx) => ({ cmd: DOCKER, args: dockerArgs(ctx, 'build', '-q', '--network', 'host', ...(noCache ? ['--no-cache'] : []), '-t', 'bench/out:latest', v(ctx, 'ctx')), env: { DOCKER_BUILDKIT: '1' } }),
        }
      : {
          tool: 'buildah build',
          needs: () => needTool('buildah'),
          ...(prepare ? { prepare } : {}),
          step: (ctx) => ({ cmd: 'buildah', args: buildahArgs(ctx, 'build', '-q', '--isolation', 'chroot', '--pull=never', '--layers', ...(noCache ? ['--no-cache'] : []), '-t', 'bench/out:latest', v(ctx, 'ctx')) }),
        };
  return {
    name: `build-${project}-${state}-${peer}`,
    description: `${project === 'tiny' ? 'busybox; RUN echo; COPY a file' : project === 'medium' ? 'Debian; apt-get install hello; COPY a 2000-file dir; ENV/WORKDIR/CMD' : 'stage 1 writes 50 MB with dd from /dev/urandom, stage 2 copies it'} — ${state === 'cold' ? 'no cache' : state === 'cached' ? 'fully cached' : 'one copied file changed'} (vs ${peer === 'docker' ? 'docker build, BuildKit, private dockerd' : 'buildah build, vfs, chroot isolation'})`,
    setup: async (ctx) => {
      const rootfs = join(ctx.work, 'rootfs');
      if (project === 'medium') {
        if (needTool('debootstrap') && !existsSync('/var/cache/tsbuild-test/debian-bookworm-minbase.tar')) return 'debootstrap is not installed (the Debian base)';
        sh(ctx, 'debian-rootfs.sh', { cmd: 'bash', args: [join(REPO_ROOT, 'testdata/images/debian-rootfs.sh'), rootfs] });
      } else {
        if (!existsSync('/bin/busybox')) return '/bin/busybox (busybox-static) is not installed';
        sh(ctx, 'busybox-rootfs.sh', { cmd: 'bash', args: [join(REPO_ROOT, 'testdata/images/busybox-rootfs.sh'), rootfs] });
      }
      const root = join(ctx.work, 'store');
      ctx.vars.set('root', root);
      ctx.vars.set('ctx', join(ctx.work, 'ctx'));
      writeContext(v(ctx, 'ctx'), project);
      const archive = join(ctx.work, 'busybox.tar');
      sh(ctx, 'tsbuild import', tsbuildStep(['--root', root, 'import', '-c', project === 'medium' ? 'CMD ["bash"]' : 'CMD ["sh"]', rootfs, base]));
      sh(ctx, 'tsbuild save', tsbuildStep(['--root', root, 'save', '-o', archive, base]));
      if (peer === 'docker') {
        const why = await startDockerd(ctx);
        if (why) return why;
        sh(ctx, 'docker load', { cmd: DOCKER, args: dockerArgs(ctx, 'load', '-q', '-i', archive) });
      } else {
        const out = sh(ctx, 'buildah pull', { cmd: 'buildah', args: buildahArgs(ctx, 'pull', '-q', `docker-archive:${archive}`) });
        sh(ctx, 'buildah tag', { cmd: 'buildah', args: buildahArgs(ctx, 'tag', out.trim().split('\n').pop()!, base) });
      }
      return undefined;
    },
    teardown: async (ctx) => {
      await stopDockerd(ctx);
      if (peer === 'buildah') spawnSync('buildah', buildahArgs(ctx, 'rmi', '-a', '-f'), { stdio: 'ignore' });
      await unmountUnder(ctx.work);
    },
    tsbuild,
    peer: other,
  };
}

/** Every build case, in the order they run. */
export const BUILD_CASES: readonly BenchCase[] = (['tiny', 'medium', 'multistage'] as const).flatMap((p) => (['cold', 'cached', 'touched'] as const).flatMap((s) => (['docker', 'buildah'] as const).map((peer) => buildCase(p, s, peer))));
