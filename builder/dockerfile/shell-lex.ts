import { DockerfileError } from './errors.js';

/**
 * Variables visible to word expansion. `get` returns undefined for an unset
 * variable; a variable set to the empty string returns ''.
 */
export interface EnvGetter {
  get(name: string): string | undefined;
  keys(): string[];
}

/** An {@link EnvGetter} over a Map or record; later `KEY=value` entries of a list win. */
export function envFrom(src: ReadonlyMap<string, string> | Readonly<Record<string, string>> | readonly string[]): EnvGetter {
  const m = new Map<string, string>();
  if (Array.isArray(src)) {
    for (const e of src as readonly string[]) {
      const i = e.indexOf('=');
      if (i < 0) m.set(e, '');
      else m.set(e.slice(0, i), e.slice(i + 1));
    }
  } else if (src instanceof Map) {
    for (const [k, v] of src) m.set(k, v);
  } else {
    for (const [k, v] of Object.entries(src as Record<string, string>)) m.set(k, v);
  }
  return { get: (k) => m.get(k), keys: () => [...m.keys()] };
}

/** Lexer options, as the fields of buildkit's `shell.Lex`. */
export interface ShellLexOptions {
  /** Keep quote characters in the output (heredoc delimiter detection). */
  readonly rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  readonly rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  readonly skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to ''. */
  readonly skipUnsetEnv?: boolean;
}

/** Result of {@link ShellLex.processWord}. */
export interface ProcessWordResult {
  /** The expanded word, spaces between fields kept. */
  readonly result: string;
  /** Names that were looked up and found. */
  readonly matched: ReadonlySet<string>;
  /** Names that were looked up and not set. */
  readonly unmatched: ReadonlySet<string>;
}

const EOF = -1;

class Scanner {
  private readonly cps: number[];
  private pos = 0;
  constructor(s: string) {
    this.cps = Array.from(s, (c) => c.codePointAt(0)!);
  }
  peek(): number {
    return this.pos < this.cps.length ? this.cps[this.pos]! : EOF;
  }
  next(): number {
    return this.pos < this.cps.length ? this.cps[this.pos++]! : EOF;
  }
}

const WHITE_SPACE = /^\p{White_Space}$/u;
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
/** Go unicode.IsSpace. */
function isSpace(cp: number): boolean {
  return cp >= 0 && WHITE_SPACE.test(String.fromCodePoint(cp));
}
function isLetter(cp: number): boolean {
  return cp >= 0 && LETTER.test(String.fromCodePoint(cp));
}
function isDigit(cp: number): boolean {
  return cp >= 0 && DIGIT.test(String.fromCodePoint(cp));
}
function chr(cp: number): string {
  return String.fromCodePoint(cp);
}

/** Shared mutable word buffer (see the NOTE in processStopOn). */
class Buf {
  s = '';
}

class Words {
  words: string[] = [];
  inWord = false;
  constructor(readonly buf: Buf) {}
  addChar(cp: number): void {
    if (isSpace(cp) && this.inWord) {
      if (this.buf.s.length !== 0) {
        this.words.push(this.buf.s);
        this.buf.s = '';
        this.inWord = false;
      }
    } else if (!isSpace(cp)) {
      this.addRawChar(cp);
    }
  }
  addRawChar(cp: number): void {
    this.buf.s += chr(cp);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const c of s) this.addChar(c.codePointAt(0)!);
  }
  addRawString(s: string): void {
    this.buf.s += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.buf.s.length > 0) {
      this.words.push(this.buf.s);
      this.buf.s = '';
      this.inWord = false;
    }
    return this.words;
  }
}

/** Thrown internally; converted into a DockerfileError naming the source word. */
class LexFailure extends Error {}

/**
 * Shell-style word expansion, exactly as BuildKit's `frontend/dockerfile/shell`
 * lexer: quotes, the escape token, `$VAR`, `${VAR}` and the modifiers
 * `:- - :+ + :? ? # ## % %% / //`. Unset variables expand to '' (unless
 * `skipUnsetEnv`). It is not a shell: no command substitution, no globbing.
 */
export class ShellLex {
  readonly escapeToken: string;
  private readonly esc: number;
  private readonly opts: ShellLexOptions;

  constructor(escapeToken = '\\', opts: ShellLexOptions = {}) {
    this.escapeToken = escapeToken;
    this.esc = escapeToken.codePointAt(0)!;
    this.opts = opts;
  }

  /** Expands one word; spaces inside it are kept. Throws DockerfileError EXPANSION_ERROR. */
  processWord(word: string, env: EnvGetter): ProcessWordResult {
    const w = new ShellWord(this.esc, this.opts, env, true, word);
    const { result } = w.run();
    return { result, matched: w.matches, unmatched: w.nonmatches };
  }

  /**
   * Expands and then splits into fields on unquoted white space (including
   * white space that came from variable values). Throws EXPANSION_ERROR.
   */
  processWords(word: string, env: EnvGetter): string[] {
    const w = new ShellWord(this.esc, this.opts, env, false, word);
    return w.run().words;
  }
}

class ShellWord {
  readonly matches = new Set<string>();
  readonly nonmatches = new Set<string>();
  private readonly scanner: Scanner;
  private rawEscapes: boolean;
  // NOTE: buildkit keeps one words buffer per lexer and resets it in every
  // (nested) processStopOn call, so `a${X:-b}c` split into words loses the `a`.
  // We reproduce that so results match BuildKit exactly.
  private readonly wordsBuffer = new Buf();

  constructor(
    private readonly esc: number,
    private readonly opts: ShellLexOptions,
    private readonly envs: EnvGetter,
    private readonly capture: boolean,
    private readonly source: string,
  ) {
    this.scanner = new Scanner(source);
    this.rawEscapes = !!opts.rawEscapes;
  }

  run(): { result: string; words: string[] } {
    try {
      return this.processStopOn(EOF, this.rawEscapes);
    } catch (e) {
      if (e instanceof LexFailure) {
        throw new DockerfileError('EXPANSION_ERROR', `failed to process ${goQuote(this.source)}: ${e.message}`, {
          text: this.source,
        });
      }
      // thousands of nested `${A:-${A:-…}}` exhaust the stack (the lexer recurses per level)
      if (e instanceof RangeError) {
        throw new DockerfileError('EXPANSION_ERROR', `failed to process ${goQuote(this.source.length > 80 ? this.source.slice(0, 80) + '…' : this.source)}: variable expansions nested too deeply`, {
          text: this.source,
        });
      }
      throw e;
    }
  }

  private processStopOn(stopChar: number, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    this.wordsBuffer.s = '';
    const words = new Words(this.wordsBuffer);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.scanner.peek() !== EOF) {
        const ch = this.scanner.peek();
        if (stopChar !== EOF && ch === stopChar) {
          this.scanner.next();
          return { result, words: words.getWords() };
        }
        let special: (() => string) | undefined;
        if (ch === 0x24 /* $ */) special = () => this.processDollar();
        else if (ch === 0x3c /* < */) special = () => this.processPossibleHeredoc();
        else if (!this.opts.skipProcessQuotes && ch === 0x27) special = () => this.processSingleQuote();
        else if (!this.opts.skipProcessQuotes && ch === 0x22) special = () => this.processDoubleQuote();
        if (special) {
          const tmp = special();
          result += tmp;
          if (ch === 0x24) words.addString(tmp);
          else words.addRawString(tmp);
          continue;
        }
        let c = this.scanner.next();
        if (c === this.esc) {
          if (this.rawEscapes) {
            words.addRawChar(c);
            result += chr(c);
          }
          c = this.scanner.next();
          if (c === EOF) break;
          words.addRawChar(c);
        } else {
          words.addChar(c);
        }
        result += chr(c);
      }
      if (stopChar !== EOF) {
        throw new LexFailure(`unexpected end of statement while looking for matching ${chr(stopChar)}`);
      }
      return { result, words: words.getWords() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.scanner.next();
    if (this.opts.rawQuotes) result += chr(ch);
    for (;;) {
      ch = this.scanner.next();
      if (ch === EOF) throw new LexFailure('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) {
        if (this.opts.rawQuotes) result += chr(ch);
        return result;
      }
      result += chr(ch);
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.scanner.next();
    if (this.opts.rawQuotes) result += chr(open);
    for (;;) {
      const p = this.scanner.peek();
      if (p === EOF) throw new LexFailure('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        const ch = this.scanner.next();
        if (this.opts.rawQuotes) result += chr(ch);
        return result;
      }
      if (p === 0x24) {
        result += this.processDollar();
        continue;
      }
      let ch = this.scanner.next();
      if (ch === this.esc) {
        if (this.rawEscapes) result += chr(ch);
        const n = this.scanner.peek();
        if (n === EOF) continue; // ignore the escape at the end of the word
        if (n === 0x22 || n === 0x24 || n === this.esc) ch = this.scanner.next();
      }
      result += chr(ch);
    }
  }

  private processDollar(): string {
    this.scanner.next();
    if (this.scanner.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const v = this.getEnv(name);
      if (v === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return v ?? '';
    }
    this.scanner.next();
    const p = this.scanner.peek();
    if (p === EOF) throw new LexFailure("syntax error: missing '}'");
    if (p === 0x7b || p === 0x7d || p === 0x3a) throw new LexFailure('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.scanner.next();
    let chs = goRune(ch);
    let nullIsUnset = false;
    switch (ch) {
      case 0x7d: {
        // ${name}
        const v = this.getEnv(name);
        if (v === undefined && this.opts.skipUnsetEnv) return `\${${name}}`;
        return v ?? '';
      }
      case 0x3a: // ':'
      case 0x2b: // '+'
      case 0x2d: // '-'
      case 0x3f: // '?'
      case 0x23: // '#'
      case 0x25: {
        // '%'
        if (ch === 0x3a) {
          nullIsUnset = true;
          ch = this.scanner.next();
          chs += goRune(ch);
        }
        const raw = ch === 0x23 || ch === 0x25;
        if (nullIsUnset && raw) throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
        let word: string;
        try {
          word = this.processStopOn(0x7d, raw).result;
        } catch (e) {
          if (this.scanner.peek() === EOF) throw new LexFailure("syntax error: missing '}'");
          throw e;
        }
        const value = this.getEnv(name);
        const set = value !== undefined;
        if (this.opts.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
        const val = value ?? '';
        switch (ch) {
          case 0x2d:
            return !set || (nullIsUnset && val === '') ? word : val;
          case 0x2b:
            return !set || (nullIsUnset && val === '') ? '' : word;
          case 0x3f:
            if (!set) throw new LexFailure(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
            if (nullIsUnset && val === '') throw new LexFailure(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
            return val;
          case 0x25:
          case 0x23: {
            let greedy = false;
            if (word.length > 0 && word.codePointAt(0) === ch) {
              greedy = true;
              word = word.slice(1);
            }
            return ch === 0x25 ? trimSuffix(word, val, greedy) : trimPrefix(word, val, greedy);
          }
          default:
            throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
        }
      }
      case 0x2f: {
        // '/'
        const all = this.scanner.peek() === 0x2f;
        if (all) this.scanner.next();
        let pattern: string;
        try {
          pattern = this.processStopOn(0x2f, true).result;
        } catch (e) {
          if (this.scanner.peek() === EOF) throw new LexFailure("syntax error: missing '/' in ${}");
          throw e;
        }
        let replacement: string;
        try {
          replacement = this.processStopOn(0x7d, true).result;
        } catch (e) {
          if (this.scanner.peek() === EOF) throw new LexFailure("syntax error: missing '}'");
          throw e;
        }
        const value = this.getEnv(name);
        if (this.opts.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
        const re = shellPatternToRegex(pattern, true, false, all);
        const val = value ?? '';
        if (all) return val.replace(re, (m) => goExpand(replacement, m));
        const m = re.exec(val);
        if (m) return val.slice(0, m.index) + replacement + val.slice(m.index + m[0].length);
        return val;
      }
      default:
        throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
    }
  }

  private processName(): string {
    let name = '';
    while (this.scanner.peek() !== EOF) {
      let ch = this.scanner.peek();
      if (name.length === 0 && isDigit(ch)) {
        while (this.scanner.peek() !== EOF && isDigit(this.scanner.peek())) {
          ch = this.scanner.next();
          name += chr(ch);
        }
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) {
        return chr(this.scanner.next());
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += chr(this.scanner.next());
    }
    return name;
  }

  private processPossibleHeredoc(): string {
    this.scanner.next();
    if (this.scanner.peek() !== 0x3c) return '<';
    this.scanner.next();
    let space = '';
    let n = this.scanner.peek();
    while (n === 0x09 || n === 0x0d || n === 0x20) {
      space += chr(n);
      this.scanner.next();
      n = this.scanner.peek();
    }
    return '<<' + space;
  }

  private getEnv(name: string): string | undefined {
    const v = this.envs.get(name);
    if (v !== undefined) {
      if (this.capture) this.matches.add(name);
      return v;
    }
    if (this.capture) this.nonmatches.add(name);
    return undefined;
  }
}

function isSpecialParam(cp: number): boolean {
  return '@*#?-$!0'.includes(chr(cp));
}

/** Go's strconv.Quote, close enough for error messages. */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

/**
 * Converts a shell wildcard pattern (`*`, `?`, `\` escapes; no brackets) to a
 * RegExp, as buildkit's convertShellPatternToRegex.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const s = new Scanner(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  for (let tok = s.next(); tok !== EOF; tok = s.next()) {
    const c = chr(tok);
    if (c === '*') {
      out += star;
      continue;
    }
    if (c === '?') {
      out += '.';
      continue;
    }
    if (c === '\\') {
      const p = s.peek();
      if (p === 0x7d || p === 0x2f) continue;
      const n = s.next();
      if (n !== 0x2a && n !== 0x3f && n !== 0x5c) {
        throw new LexFailure(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n === EOF ? '' : chr(n)}'`);
      }
      out += '\\' + chr(n);
      continue;
    }
    if ('[]{}.+()|^$'.includes(c)) out += '\\';
    out += c;
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

/** Go Regexp.Expand template semantics for ReplaceAllString: `$$`, `$0`/`${0}`; other names expand to ''. */
function goExpand(template: string, match: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '$') {
      out += c;
      continue;
    }
    const rest = template.slice(i + 1);
    if (rest.startsWith('$')) {
      out += '$';
      i++;
      continue;
    }
    let m = /^\{([A-Za-z0-9_]+)\}/.exec(rest);
    if (!m) m = /^([A-Za-z0-9_]+)/.exec(rest);
    if (!m) {
      out += '$';
      continue;
    }
    if (m[1] === '0') out += match;
    else if (/^\d+$/.test(m[1]!) && Number(m[1]) === 0) out += match;
    i += m[0].length;
  }
  return out;
}

function trimPrefix(word: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegex(word, greedy, true);
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

function reversePattern(pattern: string): string {
  const r = Array.from(pattern);
  const out: string[] = new Array<string>(r.length);
  const last = r.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = r[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = r[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, word: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(word), greedy));
}

/** Go's string(rune): EOF (-1) renders as U+FFFD. */
function goRune(cp: number): string {
  return cp < 0 ? '\uFFFD' : chr(cp);
}
