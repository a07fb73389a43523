/**
 * Regression (found while fuzzing builder/dockerfile/shell-lex.ts with long repetitions):
 * thousands of nested expansions such as `${A:-${A:-…x}}` overflowed the stack and escaped word
 * expansion as a bare RangeError ("Maximum call stack size exceeded"), which the Dockerfile
 * front end then reported as an unexplained parse error. It is now an EXPANSION_ERROR.
 */
import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../builder/dockerfile/errors.js';
import { envFrom, ShellLex } from '../../builder/dockerfile/shell-lex.js';

describe('deeply nested variable expansions', () => {
  for (const open of ['${A:-', '${A:+', '${A/']) {
    it(`${open} nested 20000 times: EXPANSION_ERROR, not a RangeError`, () => {
      const word = open.repeat(20_000) + 'x' + '}'.repeat(20_000);
      let err: unknown;
      try {
        new ShellLex('\\').processWord(word, envFrom({ A: 'v' }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DockerfileError);
      expect((err as DockerfileError).code).toBe('EXPANSION_ERROR');
      expect((err as Error).message.length).toBeLessThan(300);
    });
  }

  it('moderate nesting still expands', () => {
    const word = '${A:-'.repeat(200) + 'x' + '}'.repeat(200);
    expect(new ShellLex('\\').processWord(word, envFrom({})).result).toBe('x');
  });
});
