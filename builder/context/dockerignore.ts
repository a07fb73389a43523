/**
 * .dockerignore files and Docker's pattern matcher (moby/patternmatcher and
 * patternmatcher/ignorefile): `*`, `?`, `[...]`, `**`, `!` exceptions, last
 * match wins, a leading `/` ignored, patterns cleaned, and a pattern that
 * matches a directory excluding everything below it.
 */
import { DockerfileError } from '../dockerfile/errors.js';
import { badPattern, goClean, goMatch } from './go-path.js';

/**
 * Parses a .dockerignore file (ignorefile.ReadAll): a UTF-8 BOM is dropped,
 * lines starting with `#` are comments, blanks are skipped, each pattern is
 * trimmed and cleaned, a leading `/` removed; `!` marks an exception.
 */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (i === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let p = line.trim();
    if (p === '') return;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = goClean(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? '!' + p : p);
  });
  return out;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

const ESCAPE = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/** One compiled pattern. */
export class Pattern {
  readonly exclusion: boolean;
  /** The pattern after cleaning, without `!`. */
  readonly cleaned: string;
  readonly dirs: readonly string[];
  private matchType?: MatchType;
  private regexp?: RegExp;
  /**
   * The same expression as `regexp` as a token list, matched in linear time (Go's regexp is RE2;
   * a backtracking RegExp takes exponential time on `*a*a*a…b` or a run of `**` segments). Unset for
   * patterns with character classes or letter escapes, which keep the RegExp.
   */
  private tokens?: Token[];

  constructor(cleaned: string, exclusion: boolean) {
    this.cleaned = cleaned;
    this.exclusion = exclusion;
    this.dirs = cleaned.split('/');
  }

  /** Matches one slash-separated path (patternmatcher Pattern.match). */
  match(path: string): boolean {
    if (!this.matchType) this.compile();
    switch (this.matchType) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      default:
        return this.tokens ? nfaMatch(this.tokens, path) : this.regexp!.test(path);
    }
  }

  private compile(): void {
    let re = '^';
    let type: MatchType = 'exact';
    const chars = Array.from(this.cleaned);
    const tokens: Token[] = [];
    let linear = true;
    for (let i = 0, k = 0; k < chars.length; i++) {
      const ch = chars[k++]!;
      if (ch === '*') {
        if (chars[k] === '*') {
          k++;
          if (chars[k] === '/') k++;
          if (k >= chars.length) {
            if (type === 'exact') type = 'prefix';
            else {
              re += '.*';
              tokens.push({ k: 'any' });
              type = 'regexp';
            }
          } else {
            re += '(.*/)?';
            tokens.push({ k: 'dstar' });
            type = 'regexp';
          }
          if (i === 0) type = 'suffix';
        } else {
          re += '[^/]*';
          tokens.push({ k: 'star' });
          type = 'regexp';
        }
      } else if (ch === '?') {
        re += '[^/]';
        tokens.push({ k: 'one' });
        type = 'regexp';
      } else if (ESCAPE.has(ch)) {
        re += '\\' + ch;
        tokens.push({ k: 'lit', c: ch });
      } else if (ch === '\\') {
        if (k < chars.length) {
          const e = chars[k++]!;
          re += '\\' + e;
          // `\d`, `\w`, `\n`, … mean something else to a RegExp: leave those to it
          if (/[\p{L}\p{N}]/u.test(e)) linear = false;
          tokens.push({ k: 'lit', c: e });
          type = 'regexp';
        } else {
          re += '\\\\';
          tokens.push({ k: 'lit', c: '\\' });
        }
      } else if (ch === '[' || ch === ']') {
        re += ch;
        linear = false;
        type = 'regexp';
      } else {
        re += ch;
        if (ch === '^') linear = false;
        tokens.push({ k: 'lit', c: ch });
      }
    }
    if (type === 'regexp' && linear) this.tokens = tokens;
    if (type === 'regexp') {
      re += '$';
      try {
        this.regexp = new RegExp(re, 'u');
      } catch {
        try {
          this.regexp = new RegExp(re);
        } catch {
          throw badPattern(this.cleaned);
        }
      }
    }
    this.matchType = type;
  }
}

// One piece of a compiled pattern: a literal code point, `[^/]`, `[^/]*`, `(.*/)?` or `.*`.
type Token = { k: 'lit'; c: string } | { k: 'one' } | { k: 'star' } | { k: 'dstar' } | { k: 'any' };

/** What `.` matches in a `u` RegExp: anything but a line terminator. */
function isDot(c: string): boolean {
  return c !== '\n' && c !== '\r' && c !== '\u2028' && c !== '\u2029';
}

/**
 * Whether `path` matches `^tokens$` exactly as the RegExp built from the same pattern would, by
 * simulating the automaton (a set of positions per code point): O(tokens × path) time.
 * States 0..n are "before token i" (n: accept); n+1+i is "inside the dot-star of dstar token i".
 */
function nfaMatch(tokens: readonly Token[], path: string): boolean {
  const n = tokens.length;
  let cur = new Uint8Array(2 * n + 2);
  let next = new Uint8Array(2 * n + 2);
  const close = (set: Uint8Array): void => {
    for (let i = 0; i < n; i++) {
      if (!set[i]) continue;
      const t = tokens[i]!;
      if (t.k === 'star' || t.k === 'any' || t.k === 'dstar') set[i + 1] = 1;
      if (t.k === 'dstar') set[n + 1 + i] = 1;
    }
  };
  cur[0] = 1;
  close(cur);
  for (const c of path) {
    next.fill(0);
    let any = false;
    for (let i = 0; i < n; i++) {
      const t = tokens[i]!;
      if (cur[i]) {
        if (t.k === 'lit' ? t.c === c : t.k === 'one' ? c !== '/' : t.k === 'star' ? c !== '/' : t.k === 'any' ? isDot(c) : false) {
          next[t.k === 'lit' || t.k === 'one' ? i + 1 : i] = 1;
          any = true;
        }
      }
      if (t.k === 'dstar' && cur[n + 1 + i]) {
        // inside the optional group of a dstar: `.` consumes and stays; a `/` may also end the group
        if (isDot(c)) {
          next[n + 1 + i] = 1;
          any = true;
        }
        if (c === '/') {
          next[i + 1] = 1;
          any = true;
        }
      }
    }
    if (!any) return false;
    [cur, next] = [next, cur];
    close(cur);
  }
  return cur[n] === 1;
}

/** Per-pattern match results of a directory, passed to its children (patternmatcher MatchInfo). */
export interface MatchInfo {
  readonly parentMatched: readonly boolean[];
}

/** Docker's PatternMatcher: ordered patterns, `!` exceptions, last match wins. */
export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  /** True when any pattern is an exception (`!`). */
  readonly exclusions: boolean;

  /** Compiles patterns (patternmatcher.New). Throws INVALID_DOCKERIGNORE for `!` alone, INVALID_PATTERN for bad syntax. */
  constructor(patterns: readonly string[]) {
    const out: Pattern[] = [];
    let exclusions = false;
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = goClean(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new DockerfileError('INVALID_DOCKERIGNORE', 'illegal exclusion pattern: "!"', { text: raw });
        exclusion = true;
        p = p.slice(1);
        exclusions = true;
      }
      goMatch(p, '.'); // validates the syntax like filepath.Match(p, ".")
      out.push(new Pattern(p, exclusion));
    }
    this.patterns = out;
    this.exclusions = exclusions;
  }

  /** patternmatcher Matches: the file or the parent directory at the pattern's depth matches. */
  matches(file: string): boolean {
    let matched = false;
    const parent = dirname(file);
    const parentDirs = parent.split('/');
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue;
      let m = p.match(file);
      if (!m && parent !== '.' && p.dirs.length <= parentDirs.length) {
        m = p.match(parentDirs.slice(0, p.dirs.length).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  /** patternmatcher MatchesOrParentMatches: the file or any parent directory matches. */
  matchesOrParentMatches(file: string): boolean {
    let matched = false;
    const parent = dirname(file);
    const parentDirs = parent.split('/');
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue;
      let m = p.match(file);
      if (!m && parent !== '.') {
        for (let i = 0; i < parentDirs.length && !m; i++) m = p.match(parentDirs.slice(0, i + 1).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * patternmatcher MatchesUsingParentResults, for walkers: pass the parent's
   * MatchInfo (or undefined for top-level entries) and keep the returned info
   * for the entry's children.
   */
  matchesUsingParentResults(file: string, parent?: MatchInfo): { matched: boolean; info: MatchInfo } {
    const pm = parent?.parentMatched ?? [];
    let matched = false;
    const info: boolean[] = new Array<boolean>(this.patterns.length).fill(false);
    this.patterns.forEach((p, i) => {
      let m = pm.length ? pm[i]! : false;
      if (!m) {
        if (p.exclusion !== matched) return;
        m = p.match(file);
        if (!m && pm.length === 0) {
          const par = dirname(file);
          if (par !== '.') {
            const dirs = par.split('/');
            for (let j = 0; j < dirs.length && !m; j++) m = p.match(dirs.slice(0, j + 1).join('/'));
          }
        }
      }
      info[i] = m;
      if (m) matched = !p.exclusion;
    });
    return { matched, info: { parentMatched: info } };
  }
}

function dirname(p: string): string {
  const c = goClean(p);
  const i = c.lastIndexOf('/');
  if (i < 0) return '.';
  if (i === 0) return '/';
  return c.slice(0, i);
}

/** patternmatcher.Matches: cleans `file`; '.' never matches. */
export function matchesPatterns(file: string, patterns: readonly string[]): boolean {
  const pm = new PatternMatcher(patterns);
  const f = goClean(file);
  if (f === '.') return false;
  return pm.matches(f);
}
