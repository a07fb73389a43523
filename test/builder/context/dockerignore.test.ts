import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { goClean, goMatch } from '../../../builder/context/go-path.js';
import { matchesPatterns, parseDockerignore, PatternMatcher } from '../../../builder/context/dockerignore.js';
import { DockerfileError } from '../../../builder/dockerfile/errors.js';

const dir = new URL('../../../testdata/dockerignore/', import.meta.url).pathname;

// Each table: a .dockerignore file, a "----" line, then "path | excluded|included" rows
// (expected values produced by moby/patternmatcher MatchesOrParentMatches).
describe('.dockerignore tables', () => {
  const tables = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
  it('has tables', () => expect(tables.length).toBeGreaterThanOrEqual(6));
  for (const t of tables) {
    const [ignore, rows] = readFileSync(join(dir, t), 'utf8').split('----\n') as [string, string];
    const pm = new PatternMatcher(parseDockerignore(ignore));
    for (const row of rows.split('\n').filter(Boolean)) {
      const [path, want] = row.split(' | ') as [string, string];
      it(`${t}: ${path} is ${want}`, () => {
        expect(pm.matchesOrParentMatches(path) ? 'excluded' : 'included').toBe(want);
      });
    }
  }
});

describe('Go filepath.Match', () => {
  const rows = readFileSync(join(dir, 'filepath-match.tsv'), 'utf8').trim().split('\n');
  for (const r of rows) {
    const [pattern, name, want] = r.split('\t') as [string, string, string];
    it(`${pattern} ~ ${name} → ${want}`, () => {
      let got: string;
      try {
        got = String(goMatch(pattern, name));
      } catch (e) {
        expect(e).toBeInstanceOf(DockerfileError);
        got = 'error';
      }
      expect(got).toBe(want);
    });
  }
});

describe('parseDockerignore', () => {
  it('drops comments, BOM and blanks, cleans and strips a leading slash', () => {
    expect(parseDockerignore('\uFEFF# c\n/abs\r\n  ./x/../y/ \n\n!  /z\n # not a comment\n')).toEqual(['abs', 'y', '!z', '# not a comment']);
  });
  it('rejects a lone "!" and malformed patterns', () => {
    expect(() => new PatternMatcher(['!'])).toThrow('illegal exclusion pattern: "!"');
    expect(() => new PatternMatcher(['a['])).toThrow(DockerfileError);
  });
});

describe('PatternMatcher', () => {
  it('matches() checks the parent at the pattern depth only, as patternmatcher.Matches', () => {
    expect(matchesPatterns('a/b/c', ['a'])).toBe(true);
    expect(matchesPatterns('a/b/c', ['b'])).toBe(false);
    expect(matchesPatterns('.', ['*'])).toBe(false);
  });
  it('passes parent results down like a walker', () => {
    const pm = new PatternMatcher(['dir', '!dir/keep']);
    const d = pm.matchesUsingParentResults('dir');
    expect(d.matched).toBe(true);
    expect(pm.matchesUsingParentResults('dir/other', d.info).matched).toBe(true);
    expect(pm.matchesUsingParentResults('dir/keep', d.info).matched).toBe(false);
  });
  it('goClean mirrors path.Clean', () => {
    expect(['', '.', 'a//b/', '/../a', 'a/../../b', './a/./b/..'].map(goClean)).toEqual(['.', '.', 'a/b', '/a', '../b', 'a']);
  });
});
