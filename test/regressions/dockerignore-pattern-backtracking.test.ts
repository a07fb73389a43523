/**
 * Regression (found by test/fuzz/dockerignore.fuzz.test.ts, default seed: the suite hung): a
 * .dockerignore pattern such as `*a*a*a…*b` or a run of `**` segments was compiled to a
 * backtracking RegExp, and matching it against a path like `aaaa…` took exponential time, so a
 * build context's own .dockerignore could hang the build. Docker (Go regexp, RE2) matches these
 * in linear time; so does tsbuild now.
 */
import { describe, expect, it } from 'vitest';
import { matchesPatterns } from '../../builder/context/dockerignore.js';

describe('.dockerignore matching in linear time', () => {
  const cases: [string, string, boolean][] = [
    ['*a'.repeat(30) + 'b', 'a'.repeat(60), false],
    ['*a'.repeat(30) + 'b', 'a'.repeat(60) + 'b', true],
    ['**/'.repeat(40) + 'b', 'a/'.repeat(200) + 'c', false],
    ['**/'.repeat(40) + 'b', 'a/'.repeat(200) + 'b', true],
  ];
  for (const [pattern, path, want] of cases) {
    it(`${pattern.slice(0, 24)}… on ${path.slice(0, 16)}… is ${want}, quickly`, () => {
      const started = performance.now();
      expect(matchesPatterns(path, [pattern])).toBe(want);
      expect(performance.now() - started).toBeLessThan(500);
    });
  }
});
