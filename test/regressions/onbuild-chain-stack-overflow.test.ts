/**
 * Regression (found by test/fuzz/dockerfile.fuzz.test.ts, long repetitions of `ONBUILD `): the
 * parser recursed once per chained ONBUILD, so `ONBUILD ONBUILD … RUN x` with a few thousand links
 * (a 64 KiB line, or any length through line continuations) overflowed the stack and surfaced as
 * "Dockerfile:2:1: Maximum call stack size exceeded", depending on the stack size; shorter chains
 * took quadratic time. A chain of three or more now fails at once with buildkit's message for
 * `ONBUILD ONBUILD`; `ONBUILD ONBUILD RUN x` still fails where buildkit fails it.
 */
import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../builder/dockerfile/errors.js';
import { parseDockerfile } from '../../builder/dockerfile/parser.js';
import { parseInstructions } from '../../builder/dockerfile/parse-instructions.js';

function errorOf(text: string): DockerfileError {
  try {
    parseInstructions(parseDockerfile(text).ast);
  } catch (e) {
    expect(e).toBeInstanceOf(DockerfileError);
    return e as DockerfileError;
  }
  throw new Error('expected an error');
}

describe('chained ONBUILD', () => {
  for (const [name, link, n] of [
    ['one line', 'ONBUILD ', 8000],
    ['continuation lines', 'ONBUILD \\\n', 50_000],
    ['three links', 'ONBUILD ', 3],
  ] as const) {
    it(`${name} (${n} links): located INVALID_INSTRUCTION, quickly`, () => {
      const started = performance.now();
      const e = errorOf('FROM x\n' + link.repeat(n) + 'RUN x\n');
      expect(performance.now() - started).toBeLessThan(2000);
      expect(e.code).toBe('INVALID_INSTRUCTION');
      expect(e.message).toContain("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      expect(e.message).not.toContain('call stack');
      expect(e.location?.line).toBe(2);
    });
  }

  it('ONBUILD ONBUILD RUN x still fails when typed, at the second ONBUILD', () => {
    const e = errorOf('FROM x\nONBUILD ONBUILD RUN x\n');
    expect(e.code).toBe('INVALID_INSTRUCTION');
    expect(e.location).toMatchObject({ line: 2, column: 9 });
  });
});
