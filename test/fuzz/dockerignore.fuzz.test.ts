/**
 * Fuzzing of .dockerignore parsing and Docker's pattern matcher (builder/context/dockerignore.ts):
 * random pattern files (globs, classes, escapes, `**`, `!` exceptions, unicode) against random
 * paths, plus long repetitions of `**` and `*` against long paths (regexp backtracking).
 *
 * Properties: matching yields a boolean or a DockerfileError INVALID_DOCKERIGNORE/INVALID_PATTERN;
 * parsing never throws; no case exceeds the time box. Budget and replay: see ./budget.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../builder/dockerfile/errors.js';
import { matchesPatterns, parseDockerignore, PatternMatcher } from '../../builder/context/dockerignore.js';
import { fuzzParams, fuzzTimeout } from './budget.js';
import { assertNoInternalCause } from './internal.js';

const TIME_BOX_MS = 1_000;
const PIECES = ['*', '**', '?', '/', '\\', '[', ']', '[a-z]', '[^a]', '[]', '[\\]]', '[a-', '!', '.', '..', 'a', 'b', 'dir', '.git', 'x.txt', '\u00e9', ' ', '#', '\r', '^', '$', '(', '|', '+', '{'];

const patternArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 8 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('**/', '*', '*a', '**/a*', '?*'), fc.integer({ min: 5, max: 60 }), fc.constantFrom('', 'b', 'x.txt', '!')).map(([p, n, t]) => p.repeat(n) + t) },
);
const pathArb = fc.oneof(
  fc.array(fc.constantFrom('a', 'b', 'dir', '.git', 'x.txt', 'aaaa', '\u00e9', '..', '.', '[', '*'), { minLength: 1, maxLength: 6 }).map((a) => a.join('/')),
  fc.tuple(fc.constantFrom('a/', 'aa', 'a', 'a/b/'), fc.integer({ min: 10, max: 200 })).map(([p, n]) => p.repeat(n)),
  fc.string({ maxLength: 12 }),
);

describe('fuzz: .dockerignore patterns', () => {
  it(
    'parse never throws; matching returns a boolean or a DockerfileError, within the time box',
    () => {
      fc.assert(
        fc.property(fc.array(fc.oneof(patternArb, patternArb.map((p) => '!' + p)), { maxLength: 6 }), fc.array(pathArb, { minLength: 1, maxLength: 4 }), (patterns, paths) => {
          const parsed = parseDockerignore(patterns.join('\n'));
          expect(Array.isArray(parsed)).toBe(true);
          for (const p of paths) {
            const started = performance.now();
            try {
              expect(typeof matchesPatterns(p, parsed)).toBe('boolean');
            } catch (e) {
              if (!(e instanceof DockerfileError) || !['INVALID_DOCKERIGNORE', 'INVALID_PATTERN'].includes(e.code)) throw new Error(`matchesPatterns threw ${(e as Error)?.stack ?? String(e)}`);
              assertNoInternalCause(e, 'matchesPatterns');
            }
            const ms = performance.now() - started;
            if (ms > TIME_BOX_MS) throw new Error(`matching ${JSON.stringify(p)} took ${ms.toFixed(0)} ms`);
          }
        }),
        fuzzParams(3000, 0.5),
      );
    },
    fuzzTimeout(),
  );

  // the linear-time matcher must agree with the RegExp it replaces (short inputs: no blow-up)
  const shortPattern = fc.array(fc.constantFrom('*', '**', '**/', '?', '/', 'a', 'b', '.', '\\.', '\\*', '\\', '\u00e9', '\n', '$', '+'), { minLength: 1, maxLength: 7 }).map((a) => a.join(''));
  const shortPath = fc.array(fc.constantFrom('a', 'b', '/', '.', '*', '\u00e9', '\n', '\u2028', '$', '+', '\\'), { maxLength: 10 }).map((a) => a.join(''));
  it(
    'the linear-time matcher agrees with the RegExp form of each pattern',
    () => {
      fc.assert(
        fc.property(shortPattern, fc.array(shortPath, { minLength: 1, maxLength: 5 }), (pattern, paths) => {
          let pm: PatternMatcher;
          try {
            pm = new PatternMatcher([pattern]);
          } catch (e) {
            if (e instanceof DockerfileError) return;
            throw e;
          }
          const p = pm.patterns[0];
          if (!p) return;
          for (const path of paths) {
            const got = p.match(path);
            const re = (p as unknown as { regexp?: RegExp }).regexp;
            if (re) expect(got, `${JSON.stringify(pattern)} on ${JSON.stringify(path)} (${re})`).toBe(re.test(path));
          }
        }),
        fuzzParams(5000, 0.5),
      );
    },
    fuzzTimeout(),
  );
});
