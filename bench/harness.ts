/**
 * Benchmark harness: runs each case's tsbuild command and its peer command in the same run,
 * alternating (tsbuild, peer, then peer, tsbuild, ...) after one warm-up run of each, so that page
 * cache and thermal drift hit both sides alike. Every run goes through measure.js, which reports wall
 * time, CPU time and the peak RSS of the command. Results are reported as the ratio of medians.
 *
 * Cases are data (see cases.ts): a setup that prepares shared inputs or returns a skip reason, and two
 * sides, each a command (`Step`) with an optional untimed `prepare` before every run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Measurement, Step } from './measure.js';

export type { Step } from './measure.js';

/** Repository root (dist/bench/harness.js -> ../../). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI. */
export const TSBUILD_MAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const MEASURE = fileURLToPath(new URL('./measure.js', import.meta.url));

/** Shared state of one case: its private work dir and whatever setup stored. */
export interface CaseContext {
  /** A temp dir private to the case, removed afterwards. */
  readonly work: string;
  /** Values set by setup for the sides (paths of inputs). */
  readonly vars: Map<string, string>;
}

/** One side of a case. */
export interface Side {
  /** Short label for the table ("tsbuild", "skopeo"). */
  readonly tool: string;
  /** A reason this side cannot run here, or undefined. Checked before setup. */
  readonly needs?: () => string | undefined;
  /** Untimed, before every run (e.g. remove the previous run's output). */
  readonly prepare?: (ctx: CaseContext) => Promise<void>;
  /** The timed command. */
  readonly step: (ctx: CaseContext) => Step;
  /** A file or dir whose size is reported as the output size (default: the step's stdout file). */
  readonly output?: (ctx: CaseContext) => string | undefined;
}

/** A benchmark case: one piece of work, done by tsbuild and by a peer. */
export interface BenchCase {
  readonly name: string;
  readonly description: string;
  /** Prepares inputs (untimed, once); returns a skip reason if the host cannot. */
  readonly setup?: (ctx: CaseContext) => Promise<string | undefined>;
  /** Undoes setup (stops servers it started); runs even when setup or a run failed. */
  readonly teardown?: (ctx: CaseContext) => Promise<void>;
  readonly tsbuild: Side;
  readonly peer: Side;
}

/** Options of {@link runCases}. */
export interface HarnessOptions {
  readonly runs: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

/** Summary of one side's timed runs. */
export interface SideResult {
  readonly tool: string;
  readonly command: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly medianCpuMs: number;
  readonly peakRssKiB: number;
  readonly outputBytes?: number;
}

/** The outcome of one case: measured, skipped with a reason, or failed with the error. */
export type CaseResult =
  | { readonly name: string; readonly status: 'ok'; readonly description: string; readonly tsbuild: SideResult; readonly peer: SideResult; readonly ratio: number }
  | { readonly name: string; readonly status: 'skipped' | 'failed'; readonly reason: string };

/** Runs a step through measure.js and returns its measurement. */
export function measure(step: Step): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MEASURE, JSON.stringify(step)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`measure.js exited ${code} for ${describe(step)}`));
      try {
        resolve(JSON.parse(out) as Measurement);
      } catch (e) {
        reject(new Error(`measure.js printed no result for ${describe(step)}`, { cause: e }));
      }
    });
  });
}

/** The command line of a step, shortened for tables: paths relative to the case's work dir or the repo. */
export function describe(step: Step, work?: string): string {
  const words = [step.cmd, ...step.args].map((w) => {
    let x = work ? w.split(`${work}/`).join('') : w;
    x = x.split(REPO_ROOT).join('');
    return x;
  });
  if (words[0] === process.execPath) words[0] = 'node';
  let s = words.join(' ');
  if (step.stdin) s += ' < in';
  if (step.stdout && step.stdout !== '/dev/null') s += ' > out';
  return s;
}

/** Why `tsbuild <command>` cannot be benchmarked (no build, or the command does not exist), or undefined. */
export function needTsbuildCommand(command: string): string | undefined {
  if (!existsSync(TSBUILD_MAIN)) return `${TSBUILD_MAIN} is missing (npm run build)`;
  // An unknown command's --help prints the program's help (exit 0), so look for the command's own usage line.
  const r = spawnSync(process.execPath, [TSBUILD_MAIN, command, '--help'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.startsWith(`Usage: tsbuild ${command} `) ? undefined : `tsbuild ${command} is not available`;
}

/** Why the executable `name` cannot be used (not on PATH), or undefined. */
export function needTool(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${name} is not installed`;
}

/** A step that runs the built CLI. */
export function tsbuildStep(args: readonly string[], extra: Partial<Step> = {}): Step {
  return { cmd: process.execPath, args: [TSBUILD_MAIN, ...args], ...extra };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function sizeOf(path: string | undefined): number | undefined {
  if (!path || path === '/dev/null' || !existsSync(path)) return undefined;
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  const r = spawnSync('du', ['-sb', path], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.split('\t')[0]) : undefined;
}

async function once(side: Side, ctx: CaseContext): Promise<Measurement> {
  await side.prepare?.(ctx);
  const step = side.step(ctx);
  const m = await measure(step);
  if (m.code !== 0) throw new Error(`${side.tool}: ${describe(step, ctx.work)} exited ${m.code}: ${m.stderrTail}`);
  return m;
}

function summarise(side: Side, ctx: CaseContext, ms: readonly Measurement[]): SideResult {
  const step = side.step(ctx);
  const out = side.output ? side.output(ctx) : step.stdout;
  return {
    tool: side.tool,
    command: describe(step, ctx.work),
    medianMs: median(ms.map((m) => m.wallMs)),
    minMs: Math.min(...ms.map((m) => m.wallMs)),
    maxMs: Math.max(...ms.map((m) => m.wallMs)),
    medianCpuMs: median(ms.map((m) => m.cpuMs)),
    peakRssKiB: Math.max(...ms.map((m) => m.maxRssKiB)),
    outputBytes: sizeOf(out),
  };
}

/** Runs every case and returns one result per case; never throws for a failing case. */
export async function runCases(cases: readonly BenchCase[], opts: HarnessOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const skip = c.tsbuild.needs?.() ?? c.peer.needs?.();
    if (skip) {
      opts.log(`skip ${c.name}: ${skip}`);
      results.push({ name: c.name, status: 'skipped', reason: skip });
      continue;
    }
    const work = await mkdtemp(join(tmpdir(), `tsbuild-bench-${c.name.replace(/\W+/g, '-')}-`));
    const ctx: CaseContext = { work, vars: new Map() };
    try {
      opts.log(`${c.name}: setup`);
      const why = await c.setup?.(ctx);
      if (why) {
        opts.log(`skip ${c.name}: ${why}`);
        results.push({ name: c.name, status: 'skipped', reason: why });
        continue;
      }
      for (let i = 0; i < opts.warmup; i++) {
        await once(c.tsbuild, ctx);
        await once(c.peer, ctx);
      }
      const t: Measurement[] = [];
      const p: Measurement[] = [];
      for (let i = 0; i < opts.runs; i++) {
        if (i % 2 === 0) {
          t.push(await once(c.tsbuild, ctx));
          p.push(await once(c.peer, ctx));
        } else {
          p.push(await once(c.peer, ctx));
          t.push(await once(c.tsbuild, ctx));
        }
        opts.log(`${c.name}: run ${i + 1}/${opts.runs}: ${c.tsbuild.tool} ${t.at(-1)!.wallMs.toFixed(0)} ms, ${c.peer.tool} ${p.at(-1)!.wallMs.toFixed(0)} ms`);
      }
      const ts = summarise(c.tsbuild, ctx, t);
      const peer = summarise(c.peer, ctx, p);
      results.push({ name: c.name, status: 'ok', description: c.description, tsbuild: ts, peer, ratio: ts.medianMs / peer.medianMs });
    } catch (e) {
      const reason = (e as Error).message;
      opts.log(`FAILED ${c.name}: ${reason}`);
      results.push({ name: c.name, status: 'failed', reason });
    } finally {
      await c.teardown?.(ctx).catch((e: unknown) => opts.log(`${c.name}: teardown: ${(e as Error).message}`));
      await rm(work, { recursive: true, force: true });
    }
  }
  return results;
}

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}
function fmtBytes(b: number | undefined): string {
  if (b === undefined) return '';
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`;
}

/** Renders results as a markdown section: host line, table, skipped/failed cases. */
export function toMarkdown(results: readonly CaseResult[], opts: { runs: number; warmup: number; date: Date }): string {
  const lines: string[] = [];
  lines.push(`## ${opts.date.toISOString().replace(/\.\d+Z$/, 'Z')}`);
  lines.push('');
  lines.push(`Host: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Linux ${release()}, Node ${process.version}. ` +
    `${opts.runs} timed runs per side after ${opts.warmup} warm-up, alternating; median wall time, min–max, median CPU (user+sys), ` +
    'peak RSS of the command (getrusage RUSAGE_CHILDREN in a wrapper), output size; ratio = tsbuild median / peer median (< 1: tsbuild faster).');
  lines.push('');
  lines.push('| case | tool | command | median | min–max | CPU | peak RSS | output | ratio |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    if (r.status !== 'ok') continue;
    for (const s of [r.tsbuild, r.peer]) {
      const ratio = s === r.tsbuild ? `**${r.ratio.toFixed(2)}**` : '';
      lines.push(`| ${r.name} | ${s.tool} | \`${s.command.replace(/\|/g, '\\|')}\` | ${fmtMs(s.medianMs)} | ${fmtMs(s.minMs)}–${fmtMs(s.maxMs)} | ${fmtMs(s.medianCpuMs)} | ${(s.peakRssKiB / 1024).toFixed(0)} MiB | ${fmtBytes(s.outputBytes)} | ${ratio} |`);
    }
  }
  lines.push('');
  for (const r of results) if (r.status === 'ok') lines.push(`- ${r.name}: ${r.description}`);
  const other = results.filter((r) => r.status !== 'ok');
  if (other.length) {
    for (const r of other) lines.push(`- ${r.name}: ${r.status}: ${r.reason.split('\n')[0]}`);
  }
  lines.push('');
  return lines.join('\n');
}
