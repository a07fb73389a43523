import { DockerfileError, withLocation, type SourceLocation } from './errors.js';
import { envFrom, goQuote, ShellLex } from './shell-lex.js';

/**
 * A heredoc attached to an instruction (`RUN <<EOF`). `content` is the raw
 * text up to (not including) the terminator line, with line endings kept;
 * `<<-` tab stripping is applied later by the instruction parser, as buildkit does.
 */
export interface Heredoc {
  readonly name: string;
  readonly fileDescriptor: number;
  /** False when any part of the delimiter word was quoted (`<<'EOF'`, `<<"EOF"`): no expansion of the content. */
  readonly expand: boolean;
  /** `<<-`: strip leading tabs of content lines and of the terminator. */
  readonly chomp: boolean;
  readonly content: string;
}

/**
 * One instruction of the AST (buildkit `parser.Node`, flattened): the keyword
 * as written, the `--flags` before the arguments, the argument list as the
 * per-instruction line parser produced it, heredocs and the line range.
 */
export interface Node {
  /** Instruction keyword exactly as written (`run`, `RUN`, `Run`). */
  readonly value: string;
  /** Builder flags (`--mount=...`), quotes and escapes already processed. */
  readonly flags: readonly string[];
  /**
   * Arguments as buildkit's line parser shapes them: JSON arrays element by
   * element; ENV/LABEL as key,value,separator triples; shell forms as one
   * string; FROM/EXPOSE/ADD/COPY/VOLUME split on white space.
   */
  readonly args: readonly string[];
  /** ONBUILD's trigger instruction. */
  readonly sub?: Node;
  /** The arguments came from a JSON array (exec form). */
  readonly json: boolean;
  readonly heredocs: readonly Heredoc[];
  /** The logical line: continuations joined, comments removed. */
  readonly original: string;
  /** First and last physical line (1-based) including heredoc bodies. */
  readonly startLine: number;
  readonly endLine: number;
  /** 1-based column of the keyword on `startLine`. */
  readonly column: number;
  /** Text of physical line `startLine` (for pointing columns at offending text). */
  readonly sourceLine: string;
  /** Comment lines directly above the instruction. */
  readonly prevComment: readonly string[];
}

/** Root of the AST: the instructions in file order. */
export interface Ast {
  readonly children: readonly Node[];
}

/** A parse warning with its location (buildkit `parser.Warning`). */
export interface Warning {
  readonly short: string;
  readonly detail?: string;
  readonly url?: string;
  readonly location?: SourceLocation;
}

/** A parser directive from the top of the file (`# syntax=`, `# escape=`, `# check=`). */
export interface Directive {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

/** Output of {@link parseDockerfile}. */
export interface ParseResult {
  readonly ast: Ast;
  readonly warnings: readonly Warning[];
  readonly escapeToken: string;
  readonly directives: readonly Directive[];
}

/** Options of {@link parseDockerfile}. */
export interface ParseOptions {
  /** File name used in error locations (default `Dockerfile`). */
  readonly file?: string;
}

/** bufio.MaxScanTokenSize: the longest physical line (with its newline) buildkit reads. */
const MAX_LINE_BYTES = 64 * 1024;
const RE_WHITESPACE = /[\t\v\f\r ]+/;
const RE_HEREDOC = /^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$/;
const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);

const SPACE = /^\p{White_Space}$/u;
/** Go unicode.IsSpace for one UTF-16 unit/code point string. */
function isSpaceChar(c: string): boolean {
  return SPACE.test(c);
}
function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpaceChar(s[i]!)) i++;
  return s.slice(i);
}
function trimSpace(s: string): string {
  let e = s.length;
  while (e > 0 && isSpaceChar(s[e - 1]!)) e--;
  return trimLeftSpace(s.slice(0, e));
}
function trimNewline(s: string): string {
  let e = s.length;
  while (e > 0 && (s[e - 1] === '\r' || s[e - 1] === '\n')) e--;
  return s.slice(0, e);
}
function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith('#');
}

class ParseFailure extends Error {}

/** Parser state: the escape token and the directive parser (buildkit `directives`). */
class Directives {
  escapeToken = '\\';
  private continuation = continuationRegex('\\');
  private line = 0;
  private done = false;
  private readonly seen = new Set<string>();
  readonly found: Directive[] = [];

  setEscapeToken(s: string): void {
    if (s !== '`' && s !== '\\') throw new ParseFailure(`invalid escape token '${s}' does not match \` or \\`);
    this.escapeToken = s;
    this.continuation = continuationRegex(s);
  }

  /** Returns true when `line` is a parser directive (it may change the escape token). */
  possibleDirective(line: string): boolean {
    this.line++;
    if (this.done) return false;
    if (!line.startsWith('#')) {
      this.done = true;
      return false;
    }
    const m = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/.exec(trimLeftSpace(line.slice(1)));
    if (!m) {
      this.done = true;
      return false;
    }
    const k = m[1]!.toLowerCase();
    if (k !== 'syntax' && k !== 'escape' && k !== 'check') {
      this.done = true;
      return false;
    }
    if (this.seen.has(k)) throw new ParseFailure(`only one ${k} parser directive can be used`);
    this.seen.add(k);
    this.found.push({ name: k, value: m[2]!, line: this.line });
    if (k === 'escape') this.setEscapeToken(m[2]!);
    return true;
  }

  /** Strips a trailing continuation token; returns [line, isEndOfLine]. */
  trimContinuation(line: string): [string, boolean] {
    const m = this.continuation.exec(line);
    if (!m) return [line, true];
    return [line.slice(0, m.index) + (m[1] ?? ''), false];
  }
}

function continuationRegex(tok: string): RegExp {
  const e = '\\' + tok;
  // ([^\])\[ \t]*$ | ^\[ \t]*$ — the escape token as last non-blank char continues the line.
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

interface PhysLine {
  text: string; // with its line ending
}

function splitLines(text: string): PhysLine[] {
  const out: PhysLine[] = [];
  let i = 0;
  while (i < text.length) {
    const j = text.indexOf('\n', i);
    if (j < 0) {
      out.push({ text: text.slice(i) });
      break;
    }
    out.push({ text: text.slice(i, j + 1) });
    i = j + 1;
  }
  return out;
}

/**
 * Parses Dockerfile text into an AST with line ranges, exactly as buildkit's
 * `parser.Parse`: parser directives, escape token, line continuations
 * (comments and empty lines inside them), per-instruction argument shapes,
 * JSON (exec) form and heredocs. Unknown instructions are kept (they fail in
 * {@link parseInstructions}). Throws a located DockerfileError PARSE_ERROR.
 */
export function parseDockerfile(text: string, opts: ParseOptions = {}): ParseResult {
  const file = opts.file ?? 'Dockerfile';
  const d = new Directives();
  let lines = splitLines(text);
  // Go's bufio.Scanner stops at a line longer than 64 KiB; buildkit reports it after the lines before it.
  const tooLong = lines.findIndex((l) => Buffer.byteLength(l.text) > (l.text.endsWith('\n') ? MAX_LINE_BYTES : MAX_LINE_BYTES - 1));
  if (tooLong >= 0) lines = lines.slice(0, tooLong);
  const loc = (line: number, endLine: number): SourceLocation => {
    const src = lines[line - 1]?.text ?? '';
    const col = src.length - trimLeftSpace(src).length + 1;
    return { file, line: Math.max(line, 1), column: col, endLine: Math.max(endLine, line, 1) };
  };
  const children: Node[] = [];
  const warnings: Warning[] = [];
  let comments: string[] = [];
  let currentLine = 0;
  let idx = 0;
  const scan = (): string | undefined => (idx < lines.length ? lines[idx++]!.text : undefined);

  const processLine = (token: string, stripLeft: boolean): [string, boolean] => {
    let t = trimNewline(token);
    if (stripLeft) t = trimLeftSpace(t);
    const ok = d.possibleDirective(t);
    return [isComment(t) ? '' : t, ok];
  };

  for (let raw = scan(); raw !== undefined; raw = scan()) {
    if (currentLine === 0 && raw.startsWith('\uFEFF')) raw = raw.slice(1);
    if (isComment(raw)) {
      const c = trimSpace(trimLeftSpace(raw).slice(1));
      if (c === '') comments = [];
      else comments.push(c);
    }
    let bytesRead: string;
    let directiveOk: boolean;
    try {
      [bytesRead, directiveOk] = processLine(raw, true);
    } catch (e) {
      throw withLocation(asDockerfileError(e), loc(currentLine + 1, currentLine + 1));
    }
    if (directiveOk) comments = comments.slice(0, -1);
    currentLine++;
    const startLine = currentLine;
    let isEnd: boolean;
    [bytesRead, isEnd] = d.trimContinuation(bytesRead);
    if (isEnd && bytesRead.length === 0) continue;
    let buf = bytesRead;
    let hasEmptyContinuation = false;
    while (!isEnd) {
      const next = scan();
      if (next === undefined) break;
      let cont: string;
      try {
        [cont] = processLine(next, false);
      } catch (e) {
        throw withLocation(asDockerfileError(e), loc(currentLine, currentLine));
      }
      currentLine++;
      if (isComment(next)) continue;
      if (trimLeftSpace(trimNewline(cont)).length === 0) {
        hasEmptyContinuation = true;
        continue;
      }
      [cont, isEnd] = d.trimContinuation(cont);
      buf += cont;
    }
    const line = buf;
    if (hasEmptyContinuation) {
      warnings.push({
        short: 'Empty continuation line found in: ' + line,
        detail: 'Empty continuation lines will become errors in a future release',
        url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
        location: { file, line: currentLine, column: 1, endLine: currentLine },
      });
    }
    let child: Mutable<Node>;
    try {
      child = nodeFromLine(line, d, comments);
    } catch (e) {
      throw withLocation(asDockerfileError(e), loc(startLine, currentLine));
    }
    const sourceLine = trimNewline(lines[startLine - 1]!.text);
    child.sourceLine = sourceLine;
    child.column = sourceLine.length - trimLeftSpace(sourceLine).length + 1;
    if (canContainHeredoc(child) && line.includes('<<')) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        throw withLocation(asDockerfileError(e), loc(startLine, currentLine));
      }
      const attached: Heredoc[] = [];
      for (const h of docs) {
        let terminated = false;
        let content = h.content;
        for (let b = scan(); b !== undefined; b = scan()) {
          currentLine++;
          let term = trimNewline(b);
          if (h.chomp) term = term.replace(/^\t+/, '');
          if (term === h.name) {
            terminated = true;
            break;
          }
          content += b;
        }
        if (!terminated) {
          throw new DockerfileError('PARSE_ERROR', 'unterminated heredoc', { location: loc(startLine, currentLine), text: h.name });
        }
        attached.push({ ...h, content });
      }
      child.heredocs = attached;
    }
    child.startLine = startLine;
    child.endLine = currentLine;
    children.push(child);
    comments = [];
  }
  if (children.length === 0) {
    throw new DockerfileError('PARSE_ERROR', 'file with no instructions', { location: { file, line: Math.max(currentLine, 1), column: 1, endLine: Math.max(currentLine, 1) } });
  }
  if (tooLong >= 0) {
    throw new DockerfileError('PARSE_ERROR', `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES - 1}`, {
      location: { file, line: currentLine + 1, column: 1, endLine: currentLine + 1 },
    });
  }
  for (const dir of d.found) {
    if (dir.name === 'syntax') {
      warnings.push({
        short: `syntax directive ${goQuote(dir.value)} ignored: external frontends are not loaded, the built-in Dockerfile frontend is used`,
        location: { file, line: dir.line, column: 1, endLine: dir.line },
      });
    }
  }
  return { ast: { children }, warnings, escapeToken: d.escapeToken, directives: d.found };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function asDockerfileError(e: unknown): unknown {
  if (e instanceof ParseFailure) return new DockerfileError('PARSE_ERROR', e.message);
  return e;
}

function canContainHeredoc(node: Node): boolean {
  let n = node;
  if (n.value.toLowerCase() === 'onbuild' && n.sub) n = n.sub;
  return HEREDOC_INSTRUCTIONS.has(n.value.toLowerCase()) && !n.json;
}

interface LineResult {
  args: string[];
  json: boolean;
  sub?: Node;
}

function nodeFromLine(line: string, d: Directives, comments: readonly string[]): Mutable<Node> {
  const { cmd, flags, args } = splitCommand(line, d);
  const r = dispatch(cmd.toLowerCase(), args, d);
  const node: Mutable<Node> = {
    value: cmd,
    flags,
    args: r.args,
    json: r.json,
    heredocs: [],
    original: line,
    startLine: 0,
    endLine: 0,
    column: 1,
    sourceLine: '',
    prevComment: [...comments],
  };
  if (r.sub) node.sub = r.sub;
  return node;
}

function dispatch(cmd: string, rest: string, d: Directives): LineResult {
  switch (cmd) {
    case 'add':
    case 'copy':
    case 'volume':
      return parseMaybeJsonToList(rest);
    case 'arg':
      return { args: parseWords(rest, d.escapeToken), json: false };
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      return parseMaybeJson(rest);
    case 'env':
      return { args: parseNameVal(rest, 'ENV', d), json: false };
    case 'label':
      return { args: parseNameVal(rest, 'LABEL', d), json: false };
    case 'expose':
    case 'from':
      return { args: splitWhitespace(rest), json: false };
    case 'healthcheck':
      return parseHealthConfig(rest);
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      return { args: rest === '' ? [] : [rest], json: false };
    case 'onbuild': {
      if (rest === '') return { args: [], json: false };
      // ONBUILD ONBUILD fails when the instructions are typed; a longer chain fails here, before
      // the recursion below grows with it (a long enough chain overflowed the stack)
      const inner = splitCommand(rest, d);
      if (inner.cmd.toLowerCase() === 'onbuild' && splitCommand(inner.args, d).cmd.toLowerCase() === 'onbuild') {
        throw new DockerfileError('INVALID_INSTRUCTION', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", { text: inner.cmd });
      }
      const sub = nodeFromLine(rest, d, []);
      return { args: [], json: false, sub };
    }
    default:
      // buildkit's parseIgnore: keeps one empty argument node
      return { args: [''], json: false };
  }
}

/** Splits the keyword from the rest and extracts leading `--flags` (buildkit splitCommand/extractBuilderFlags). */
function splitCommand(line: string, d: Directives): { cmd: string; flags: string[]; args: string } {
  const t = trimSpace(line);
  const m = RE_WHITESPACE.exec(t);
  if (!m) return { cmd: t, flags: [], args: '' };
  const cmd = t.slice(0, m.index);
  const { rest, flags } = extractBuilderFlags(t.slice(m.index + m[0].length), d.escapeToken);
  return { cmd, flags, args: trimSpace(rest) };
}

function extractBuilderFlags(line: string, esc: string): { rest: string; flags: string[] } {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let sb = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isSpaceChar(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags: words };
      phase = 'word';
    }
    if (pos === line.length) {
      if (sb !== '--' && (blankOK || sb.length > 0)) words.push(sb);
      break;
    }
    if (phase === 'word') {
      if (isSpaceChar(ch)) {
        phase = 'spaces';
        if (sb === '--') return { rest: line.slice(pos), flags: words };
        if (blankOK || sb.length > 0) words.push(sb);
        sb = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === esc) {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      sb += ch;
      continue;
    }
    // quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === esc) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    sb += ch;
  }
  return { rest: '', flags: words };
}

/** Splits words keeping quotes and escapes (buildkit parseWords); used by ARG, ENV and LABEL. */
export function parseWords(rest: string, esc: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let sb = '';
  const cps = Array.from(rest);
  for (let pos = 0; pos <= cps.length; pos++) {
    let ch = pos < cps.length ? cps[pos]! : '';
    if (phase === 'spaces') {
      if (pos === cps.length) break;
      if (isSpaceChar(ch)) continue;
      phase = 'word';
    }
    if (pos === cps.length) {
      if (blankOK || sb.length > 0) words.push(sb);
      break;
    }
    if (phase === 'word') {
      if (isSpaceChar(ch)) {
        phase = 'spaces';
        if (blankOK || sb.length > 0) words.push(sb);
        sb = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === esc) {
        if (pos + 1 === cps.length) continue;
        sb += ch;
        pos++;
        ch = cps[pos]!;
      }
      sb += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === esc && quote !== "'") {
      if (pos + 1 === cps.length) {
        phase = 'word';
        continue;
      }
      pos++;
      sb += ch;
      ch = cps[pos]!;
    }
    sb += ch;
  }
  return words;
}

function parseNameVal(rest: string, key: string, d: Directives): string[] {
  const words = parseWords(rest, d.escapeToken);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const m = RE_WHITESPACE.exec(rest);
    if (!m) throw new ParseFailure(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''];
  }
  const out: string[] = [];
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw new ParseFailure(`Syntax error - can't find = in ${goQuote(w)}. Must be of the form: name=value`);
    out.push(w.slice(0, i), w.slice(i + 1), '=');
  }
  return out;
}

function splitWhitespace(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(RE_WHITESPACE);
}

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

function parseJson(rest: string): string[] | undefined {
  const r = trimLeftSpace(rest);
  if (!r.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(r);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  for (const s of v) if (typeof s !== 'string') throw new ParseFailure(NOT_STRING_ARRAY);
  return v as string[];
}

function parseMaybeJson(rest: string): LineResult {
  if (rest === '') return { args: [], json: false };
  const j = parseJson(rest);
  if (j) return { args: j, json: true };
  return { args: [rest], json: false };
}

function parseMaybeJsonToList(rest: string): LineResult {
  const j = parseJson(rest);
  if (j) return { args: j, json: true };
  return { args: splitWhitespace(rest), json: false };
}

function parseHealthConfig(rest: string): LineResult {
  let sep = 0;
  while (sep < rest.length && !isSpaceChar(rest[sep]!)) sep++;
  let next = sep;
  while (next < rest.length && isSpaceChar(rest[next]!)) next++;
  if (sep === 0) return { args: [], json: false };
  const cmd = parseMaybeJson(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

const emptyEnv = envFrom({});

/** Parses a `<<[-]WORD` token (buildkit ParseHeredoc); undefined when `src` is not a heredoc. */
export function parseHeredoc(src: string): Heredoc | undefined {
  const m = RE_HEREDOC.exec(src);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest.length === 0) return undefined;
  const words = new ShellLex('\\', { skipUnsetEnv: true }).processWords(rest, emptyEnv);
  if (words.length !== 1) return undefined;
  const raw = new ShellLex('\\', { skipUnsetEnv: true, rawQuotes: true }).processWords(rest, emptyEnv);
  if (raw.length !== words.length) throw new ParseFailure(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const count = (s: string) => (s.match(/['"]/g) ?? []).length;
  const word = words[0]!;
  return {
    name: word,
    fileDescriptor: m[1] ? Number.parseInt(m[1], 10) : 0,
    expand: count(word) === count(raw[0]!),
    chomp: m[2] === '-',
    content: '',
  };
}

function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = new ShellLex('\\', { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, emptyEnv);
  } catch {
    words = [];
  }
  const docs: Heredoc[] = [];
  for (const w of words) {
    const h = parseHeredoc(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** Removes leading tabs from every line of heredoc content (`<<-`). */
export function chompHeredocContent(s: string): string {
  return s.replace(/^\t+/gm, '');
}

/**
 * Renders the AST like buildkit's `Node.Dump()` (one s-expression per
 * instruction), so results can be compared with buildkit's parser test files.
 */
export function dumpNode(n: Node): string {
  let s = n.value.toLowerCase();
  if (n.flags.length > 0) s += ' [' + n.flags.map(goQuoteExact).join(' ') + ']';
  if (n.sub) s += ' (' + dumpNode(n.sub) + ')';
  for (const a of n.args) s += ' ' + goQuoteExact(a);
  return trimSpace(s);
}

/** Go strconv.Quote. */
export function goQuoteExact(s: string): string {
  let out = '"';
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    switch (c) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (cp === 0x20 || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c)) out += c;
    else if (cp < 0x80) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}
