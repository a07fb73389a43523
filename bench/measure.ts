/**
 * Measures one command: `node dist/bench/measure.js '<Step as JSON>'` runs the step to completion and
 * prints one JSON line `Measurement` on stdout.
 *
 * Peak RSS: this wrapper is a fresh process whose only child is the measured command, so after the
 * child is reaped `getrusage(RUSAGE_CHILDREN).ru_maxrss` is exactly the child's peak resident set
 * (the largest of it and any descendants it waited for; not their sum). Node has no binding for
 * RUSAGE_CHILDREN (process.resourceUsage() is RUSAGE_SELF), so it is called through koffi.
 * Wall time is taken around the spawn inside the wrapper, so the wrapper's own start-up is excluded.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import koffi from 'koffi';

/** One command to run: argv, optional stdin/stdout files, env additions and cwd. */
export interface Step {
  readonly cmd: string;
  readonly args: readonly string[];
  /** File fed to stdin (default /dev/null). */
  readonly stdin?: string;
  /** File that receives stdout (default /dev/null). */
  readonly stdout?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** What measure.js reports for one run. */
export interface Measurement {
  readonly code: number;
  readonly wallMs: number;
  /** User + system CPU time of the child, ms. */
  readonly cpuMs: number;
  /** Peak resident set size of the child, KiB. */
  readonly maxRssKiB: number;
  /** The last lines of the child's stderr. */
  readonly stderrTail: string;
}

const RUSAGE_CHILDREN = -1;

function childrenUsage(): { maxRssKiB: number; cpuMs: number } {
  const libc = koffi.load('libc.so.6');
  const timeval = koffi.struct('bench_timeval', { tv_sec: 'long', tv_usec: 'long' });
  const rusage = koffi.struct('bench_rusage', {
    ru_utime: timeval, ru_stime: timeval,
    ru_maxrss: 'long', ru_ixrss: 'long', ru_idrss: 'long', ru_isrss: 'long', ru_minflt: 'long', ru_majflt: 'long', ru_nswap: 'long',
    ru_inblock: 'long', ru_oublock: 'long', ru_msgsnd: 'long', ru_msgrcv: 'long', ru_nsignals: 'long', ru_nvcsw: 'long', ru_nivcsw: 'long',
  });
  const getrusage = libc.func('getrusage', 'int', ['int', koffi.out(koffi.pointer(rusage))]);
  const ru = {} as { ru_utime: { tv_sec: number; tv_usec: number }; ru_stime: { tv_sec: number; tv_usec: number }; ru_maxrss: number };
  if (getrusage(RUSAGE_CHILDREN, ru) !== 0) throw new Error('getrusage(RUSAGE_CHILDREN) failed');
  const ms = (t: { tv_sec: number; tv_usec: number }): number => t.tv_sec * 1000 + t.tv_usec / 1000;
  return { maxRssKiB: ru.ru_maxrss, cpuMs: ms(ru.ru_utime) + ms(ru.ru_stime) };
}

function main(): void {
  const step = JSON.parse(process.argv[2] ?? '') as Step;
  const stdin = openSync(step.stdin ?? '/dev/null', 'r');
  const stdout = openSync(step.stdout ?? '/dev/null', 'w');
  const start = process.hrtime.bigint();
  const r = spawnSync(step.cmd, step.args as string[], {
    stdio: [stdin, stdout, 'pipe'],
    env: { ...process.env, ...step.env },
    cwd: step.cwd,
    maxBuffer: 64 << 20,
  });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  closeSync(stdin);
  closeSync(stdout);
  const usage = childrenUsage();
  const stderr = (r.stderr?.toString('utf8') ?? '') + (r.error ? `\n${r.error.message}` : '');
  const m: Measurement = {
    code: r.status ?? (r.signal ? 128 : 127),
    wallMs,
    cpuMs: usage.cpuMs,
    maxRssKiB: usage.maxRssKiB,
    stderrTail: stderr.trim().split('\n').slice(-5).join('\n'),
  };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

main();
