/**
 * Budget of the property-based fuzz tests. Each file runs a fixed, seeded number of cases in the
 * normal suite; `FUZZ_RUNS=<n>` scales every property to about n cases (longer runs) and
 * `FUZZ_SEED=<n>` replays a failure reported by fast-check (with `FUZZ_PATH` for the exact case).
 *
 *   FUZZ_RUNS=100000 npx vitest run --config test/vitest.config.ts test/fuzz
 *   FUZZ_SEED=1234 FUZZ_PATH=17:3 npx vitest run --config test/vitest.config.ts test/fuzz/dockerfile.fuzz.test.ts
 */
import type { Parameters } from 'fast-check';

/** Default seed of the suite: fixed so that CI is reproducible. */
export const DEFAULT_SEED = 20261125;

function intEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** True when FUZZ_RUNS asks for a longer run than the suite's default. */
export function isLongRun(): boolean {
  return intEnv('FUZZ_RUNS') !== undefined;
}

/**
 * fast-check parameters for one property: `defaultRuns` cases (or FUZZ_RUNS × share), seeded with
 * FUZZ_SEED or the suite's fixed seed. `share` lets a file split FUZZ_RUNS among its properties.
 */
export function fuzzParams<T>(defaultRuns: number, share = 1): Parameters<T> {
  const runs = intEnv('FUZZ_RUNS');
  const seed = intEnv('FUZZ_SEED') ?? DEFAULT_SEED;
  const path = process.env['FUZZ_PATH'];
  return {
    numRuns: runs === undefined ? defaultRuns : Math.max(1, Math.round(runs * share)),
    seed,
    ...(path ? { path } : {}),
    endOnFailure: false,
    verbose: 1,
  };
}

/** Per-test timeout (ms) for a property: generous for the default budget, unbounded-ish for long runs. */
export function fuzzTimeout(defaultMs = 60_000): number {
  const runs = intEnv('FUZZ_RUNS');
  return runs === undefined ? defaultMs : Math.max(defaultMs, runs * 250);
}
