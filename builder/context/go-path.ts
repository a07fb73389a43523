/**
 * Go's `path.Clean` and `path/filepath.Match` (Unix), which Docker uses for
 * .dockerignore patterns and COPY/ADD wildcards.
 */
import { DockerfileError } from '../dockerfile/errors.js';

/** Go `path.Clean`: shortest equivalent path; '' → '.'. */
export function goClean(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** The error Go returns for a malformed pattern (`filepath.ErrBadPattern`). */
export function badPattern(pattern: string): DockerfileError {
  return new DockerfileError('INVALID_PATTERN', `syntax error in pattern: ${JSON.stringify(pattern)}`, { text: pattern });
}

class BadPattern extends Error {}

function scanChunk(p: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let i0 = 0;
  let star = false;
  while (i0 < p.length && p[i0] === '*') {
    i0++;
    star = true;
  }
  const q = p.slice(i0);
  let inrange = false;
  let i = 0;
  scan: for (; i < q.length; i++) {
    switch (q[i]) {
      case '\\':
        if (i + 1 < q.length) i++;
        break;
      case '[':
        inrange = true;
        break;
      case ']':
        inrange = false;
        break;
      case '*':
        if (!inrange) break scan;
        break;
    }
  }
  return { star, chunk: q.slice(0, i), rest: q.slice(i) };
}

function getEsc(chunk: string[]): { r: string; rest: string[] } {
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') throw new BadPattern();
  let c = chunk;
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c.length === 0) throw new BadPattern();
  }
  const r = c[0]!;
  const rest = c.slice(1);
  if (rest.length === 0) throw new BadPattern();
  return { r, rest };
}

function cp(s: string): number {
  return s.codePointAt(0)!;
}

function matchChunk(chunkIn: string[], sIn: string[]): string[] | undefined {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    switch (chunk[0]) {
      case '[': {
        let r = -1;
        if (!failed) {
          r = cp(s[0]!);
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
        let negated = false;
        if (chunk.length > 0 && chunk[0] === '^') {
          negated = true;
          chunk = chunk.slice(1);
        }
        let match = false;
        let nrange = 0;
        for (;;) {
          if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
            chunk = chunk.slice(1);
            break;
          }
          const lo = getEsc(chunk);
          chunk = lo.rest;
          let hi = lo.r;
          if (chunk[0] === '-') {
            const h = getEsc(chunk.slice(1));
            hi = h.r;
            chunk = h.rest;
          }
          if (cp(lo.r) <= r && r <= cp(hi)) match = true;
          nrange++;
        }
        if (match === negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (s[0] === '/') failed = true;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
        break;
      default:
        if (chunk[0] === '\\') {
          chunk = chunk.slice(1);
          if (chunk.length === 0) throw new BadPattern();
        }
        if (!failed) {
          if (chunk[0] !== s[0]) failed = true;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
    }
  }
  return failed ? undefined : s;
}

/**
 * Go `filepath.Match(pattern, name)` on Unix: `*` (not across `/`), `?`,
 * `[...]`/`[^...]` classes with ranges, `\` escapes. Throws INVALID_PATTERN
 * for a malformed pattern (even when the name does not match, as Go does).
 */
export function goMatch(pattern: string, name: string): boolean {
  try {
    return matchInner(Array.from(pattern), Array.from(name));
  } catch (e) {
    if (e instanceof BadPattern) throw badPattern(pattern);
    throw e;
  }
}

function matchInner(patIn: string[], nameIn: string[]): boolean {
  let pattern = patIn;
  let name = nameIn;
  outer: while (pattern.length > 0) {
    const { star, chunk, rest } = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes('/');
    const t = matchChunk(chunk, name);
    if (t !== undefined && (t.length === 0 || pattern.length > 0)) {
      name = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1));
        if (t2 !== undefined) {
          if (pattern.length === 0 && t2.length > 0) continue;
          name = t2;
          continue outer;
        }
      }
    }
    // the rest of the pattern must still be well-formed
    while (pattern.length > 0) {
      const sc = scanChunk(pattern);
      pattern = sc.rest;
      matchChunk(sc.chunk, []);
    }
    return false;
  }
  return name.length === 0;
}

/** True when `s` has characters that make it a pattern for filepath.Match. */
export function hasMeta(s: string): boolean {
  return /[*?[\\]/.test(s);
}
