/**
 * A store root with a busybox image for container tests that drive the built CLI: `run -d`
 * under a per-test-file cgroup parent, and a check that nothing is left behind (mounts,
 * record and runtime dirs, cgroups, monitors).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs } from './base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot } from './capabilities.js';
import { REPO_ROOT, runTsbuild, TSBUILD_MAIN, tsbuildOk, type RunResult } from './tools.js';

/** Why container CLI tests cannot run here, or undefined. */
export function containerTestsUnavailable(): string | undefined {
  return firstReason(
    needRoot(),
    needOverlay(),
    needCgroupV1(['memory', 'pids', 'cpu', 'freezer']),
    existsSync(TSBUILD_MAIN) ? undefined : 'the CLI is not built (npm run build)',
    existsSync(join(REPO_ROOT, 'native/build/tsbuild-helper')) ? undefined : 'native/build is not built (make -C native)',
  );
}

/** Host pids whose command line mentions `needle`. */
export function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The busybox image imported by {@link ContainerEnv.setup} (CMD sh). */
export const BUSYBOX = 'localhost/ctr/busybox:latest';

/** One store root for a test file. */
export class ContainerEnv {
  root = '';
  /** The cgroup parent of every container run through {@link runD}. */
  readonly parent = `tsbuild-ctr-${process.pid}`;
  private readonly seen: string[] = [];

  /** Makes the root and imports busybox as {@link BUSYBOX}, plus extra images: name → Dockerfile-style -c changes. */
  async setup(extra: Record<string, string[]> = {}): Promise<void> {
    this.root = mkdtempSync(join(tmpdir(), 'tsbuild-ctr-'));
    const bb = await busyboxRootfs();
    await tsbuildOk(['import', bb, BUSYBOX, '-c', 'CMD ["sh"]'], { root: this.root });
    for (const [name, changes] of Object.entries(extra)) await tsbuildOk(['import', bb, name, ...changes.flatMap((c) => ['-c', c])], { root: this.root });
  }

  /** `tsbuild ARGS` in this root; never throws on a non-zero exit. */
  ts(...a: string[]): Promise<RunResult> {
    return runTsbuild(a, { root: this.root });
  }

  /** `tsbuild ARGS` in this root; its stdout, or throws. */
  async ok(...a: string[]): Promise<string> {
    return (await tsbuildOk(a, { root: this.root })).stdout;
  }

  /** `tsbuild run -d --cgroup-parent P ARGS`: the container id. */
  async runD(...a: string[]): Promise<string> {
    const id = (await this.ok('run', '-d', '--cgroup-parent', this.parent, ...a)).trim();
    this.seen.push(id);
    return id;
  }

  /** `container inspect` of one container. */
  async inspect(ref: string): Promise<Record<string, any>> {
    return (JSON.parse(await this.ok('container', 'inspect', ref)) as Record<string, any>[])[0]!;
  }

  /** What the containers of this root left on the host. */
  leftovers(): string[] {
    const out: string[] = [];
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(this.root)) out.push('mount');
    for (const d of ['containers', 'run']) {
      if (!existsSync(join(this.root, d))) continue;
      for (const e of readdirSync(join(this.root, d))) if (e !== 'names' || readdirSync(join(this.root, d, e)).length) out.push(`${d}/${e}`);
    }
    for (const h of ['pids', 'cpu', 'memory', 'freezer']) if (existsSync(join('/sys/fs/cgroup', h, this.parent))) out.push(`cgroup ${h}`);
    for (const id of this.seen) if (processesWith(`tsbuild-monitor ${id.slice(0, 12)}`).length) out.push(`monitor of ${id.slice(0, 12)}`);
    return out;
  }

  /** rm -f of every container; then what is left (expect it empty). */
  async cleanup(): Promise<string[]> {
    const ids = (await this.ts('ps', '-aq', '--no-trunc')).stdout.split('\n').filter(Boolean);
    if (ids.length) await this.ts('rm', '-f', ...ids);
    return this.leftovers();
  }

  /** Removes the root. */
  destroy(): void {
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }
}

/** Polls `fn` every 100 ms until it returns a truthy value or `ms` pass; returns the last value. */
export async function until<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
