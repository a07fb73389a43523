/**
 * The benchmark cases, as data: each names a piece of work, how to prepare its inputs, the tsbuild
 * command and the peer command that does the same work. Add rows here (runtime, build, push/pull).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needTool, needTsbuildCommand, REPO_ROOT, tsbuildStep, type BenchCase, type CaseContext, type Step } from './harness.js';

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
function sh(ctx: CaseContext, what: string, step: Step): void {
  const r = spawnSync(step.cmd, step.args as string[], { encoding: 'utf8', cwd: step.cwd ?? ctx.work, env: { ...process.env, ...step.env } });
  if (r.status !== 0) throw new Error(`setup: ${what} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' ')}`);
}

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
];
