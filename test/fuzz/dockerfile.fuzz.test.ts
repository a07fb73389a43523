/**
 * Fuzzing of the Dockerfile front end: the parser (text → AST), instruction parsing (AST → typed
 * stages), the converter (stages → resolved plan) and shell-word expansion. Inputs are the golden
 * corpus (testdata/dockerfile/parse{,-negative}/<case>/Dockerfile) mutated byte- and line-wise, plus
 * generated instructions with random flags, heredocs, escapes and unicode.
 *
 * Properties: nothing but a DockerfileError is ever thrown; every error of the parser and of
 * instruction parsing is located on a line of the file; no case takes longer than the time box.
 * Budget and replay: see ./budget.ts.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../builder/dockerfile/errors.js';
import { parseDockerfile } from '../../builder/dockerfile/parser.js';
import { parseInstructions } from '../../builder/dockerfile/parse-instructions.js';
import { ShellLex, envFrom } from '../../builder/dockerfile/shell-lex.js';
import { convertDockerfile } from '../../builder/convert/convert.js';
import { fuzzParams, fuzzTimeout } from './budget.js';

const ROOT = new URL('../..', import.meta.url).pathname;
/** Longest a single case may take (parse + instructions + convert) on a loaded 2-core machine. */
// Generous: the suite runs on a loaded 2-core CI machine; the point is "never hangs", not speed.
const TIME_BOX_MS = 15_000;

function corpus(dirs = ['testdata/dockerfile/parse', 'testdata/dockerfile/parse-negative']): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    const abs = join(ROOT, dir);
    if (!existsSync(abs)) continue;
    for (const c of readdirSync(abs).sort()) {
      const f = join(abs, c, 'Dockerfile');
      if (existsSync(f)) out.push(readFileSync(f, 'utf8'));
    }
  }
  return out;
}
const CORPUS = corpus();
/** The well-formed half of the corpus (testdata/dockerfile/parse). */
const GOOD = corpus(['testdata/dockerfile/parse']);

const KEYWORDS = ['FROM', 'FROM', 'RUN', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ENV', 'ADD', 'COPY', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'from', 'run', 'Copy', 'RUNN'];
const FLAGS = [
  '--from=', '--from=0', '--from=builder', '--chown=', '--chown=1:1', '--chmod=', '--chmod=0755', '--chmod=u+x', '--link', '--link=false', '--parents',
  '--exclude=*.md', '--platform=', '--platform=$BUILDPLATFORM', '--platform=linux/arm/v7/x', '--mount=', '--mount=type=cache,target=/c',
  '--mount=type=secret,id=x,required', '--mount=type=bind,from=a,source=../..,target=/', '--mount=type=tmpfs,size=1gb', '--mount=type=ssh,mode=0777',
  '--mount=type=cache,sharing=weird', '--network=none', '--network=', '--security=insecure', '--interval=', '--interval=1ms', '--timeout=-3s',
  '--start-period=1h2m3.5s', '--retries=-1', '--retries=x', '--keep-git-dir', '--checksum=sha256:00', '--unknown', '--', '-', '--=', '--mount',
];
const TOKENS = [
  '\\', '`', '\\\n', '`\n', '\n', '\r\n', '\r', '\t', ' ', '#', '# escape=`\n', '# syntax=docker/dockerfile:1\n', '# check=skip=all\n',
  '$', '${', '}', '${A:-', '${A:+b}', '${A?err}', '${#A}', '${A%%*}', '${A//x/y}', '$$', '"', "'", '[', ']', '["a", "b"]', '[""', '=', '==',
  '<<EOF\n', '<<-EOT\n', '<<"EOF"\n', "<<'E'\n", '<<', '0<<X\n', 'EOF\n', 'EOT', '\0', '\u00a0', '\u2028', '\ufeff', '\u{1F600}', '\ud800', 'é', 'ß',
  'AS', ' AS ', 'scratch', 'alpine:3', '@sha256:', ',', ':', '/', '../', '*', '?', '{', '~',
];

const anyArgArb = fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 4 }));
/** Arguments without line breaks: the instruction stays one instruction. */
const lineArgArb = fc.oneof(
  fc.constantFrom(...TOKENS.filter((t) => !/[\r\n\0]/.test(t))),
  fc.stringMatching(/^[a-zA-Z0-9_./:=$@{}-]{1,10}$/),
  fc.string({ unit: 'grapheme', maxLength: 4 }).map((g) => g.replace(/[\r\n]/g, ' ')),
);

/** A random instruction line (or block with a heredoc). */
const instructionArb: fc.Arbitrary<string> = instructionOf(anyArgArb, KEYWORDS);
const lineInstructionArb: fc.Arbitrary<string> = instructionOf(lineArgArb, KEYWORDS.filter((k) => k === k.toUpperCase() && k !== 'RUNN'));

function instructionOf(argArb: fc.Arbitrary<string>, keywords: readonly string[]): fc.Arbitrary<string> {
  return fc
  .tuple(
    fc.constantFrom(...keywords),
    fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.array(fc.constantFrom(...FLAGS), { minLength: 1, maxLength: 3 }) }),
    fc.array(argArb, { maxLength: 8 }),
    fc.option(fc.tuple(fc.constantFrom('EOF', 'EOT', '"END"', "'X'", '-EOF', 'E\\OF'), fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }), fc.boolean()), { nil: undefined }),
  )
  .map(([kw, flags, args, heredoc]) => {
    let s = [kw, ...flags, ...args].join(' ');
    if (heredoc) {
      const [delim, body, terminated] = heredoc;
      const name = delim.replace(/^-/, '').replace(/["'\\]/g, '');
      s += ` <<${delim}\n${body.join('\n')}\n${terminated ? name + '\n' : ''}`;
    }
    return s + '\n';
  });
}

type Mutation =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number; to: number }
  | { kind: 'splice'; at: number; from: number; line: number }
  | { kind: 'instruction'; at: number; text: string }
  | { kind: 'flip'; at: number; code: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 80 }), to: fc.nat() }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), line: fc.nat() }),
  fc.record({ kind: fc.constant('instruction' as const), at: fc.nat(), text: instructionArb }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), code: fc.integer({ min: 0, max: 0x10ffff }) }),
);

/** Applies mutations; positions are taken modulo the current length (line starts for line-wise ones). */
function mutate(base: string, ops: readonly Mutation[]): string {
  let s = base;
  const lineStart = (at: number): number => {
    const starts = [0];
    for (let i = 0; i < s.length; i++) if (s[i] === '\n') starts.push(i + 1);
    return starts[at % starts.length]!;
  };
  for (const op of ops) {
    const at = s.length === 0 ? 0 : op.at % (s.length + 1);
    switch (op.kind) {
      case 'insert':
        s = s.slice(0, at) + op.text + s.slice(at);
        break;
      case 'delete':
        s = s.slice(0, at) + s.slice(at + op.len);
        break;
      case 'duplicate': {
        const piece = s.slice(at, at + op.len);
        const to = op.to % (s.length + 1);
        s = s.slice(0, to) + piece + s.slice(to);
        break;
      }
      case 'splice': {
        const other = CORPUS[op.from % CORPUS.length] ?? '';
        const lines = other.split('\n');
        const p = lineStart(op.at);
        s = s.slice(0, p) + lines[op.line % lines.length]! + '\n' + s.slice(p);
        break;
      }
      case 'instruction': {
        const p = lineStart(op.at);
        s = s.slice(0, p) + op.text + s.slice(p);
        break;
      }
      case 'flip': {
        const cp = op.code >= 0xd800 && op.code <= 0xdfff ? 0xfffd : op.code;
        s = s.slice(0, at) + String.fromCodePoint(cp) + s.slice(at + 1);
        break;
      }
    }
  }
  return s;
}

/** Line-wise edits only: mostly still well-formed, so the later stages (instructions, convert) get exercised. */
const gentleMutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), line: fc.nat() }),
  fc.record({ kind: fc.constant('instruction' as const), at: fc.nat(), text: lineInstructionArb }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom('$A', '${A:-x}', '${B:+$A}', ' ', '\\\n', 'x', '"', '--link ', '1') }),
);

const dockerfileArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...GOOD), fc.array(gentleMutationArb, { minLength: 1, maxLength: 3 })).map(([b, ops]) => mutate(b, ops)) },
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...CORPUS), fc.array(mutationArb, { minLength: 1, maxLength: 6 })).map(([b, ops]) => mutate(b, ops)) },
  { weight: 3, arbitrary: fc.array(instructionArb, { minLength: 1, maxLength: 8 }).map((ls) => ls.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  // long repetitions: quadratic or exponential behaviour shows up as a broken time box
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...TOKENS, 'RUN a \\\n', '#c\n', '${A:-', '\\\n', 'ENV A=$A$A\n', 'ARG A=${A}${A}\n', '<<E\n', 'COPY --from=0 a b\n', 'FROM x AS y\n', '"', '[', 'ONBUILD '), fc.integer({ min: 50, max: 3000 }), fc.constantFrom('', 'RUN x\n', '}'))
      .map(([t, n, tail]) => 'FROM x\n' + t.repeat(n) + tail),
  },
);

function lineCount(text: string): number {
  let n = 1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

/** Fails when a DockerfileError merely wraps an internal failure (TypeError, RangeError: a stack overflow, …). */
function internalCause(e: Error, stage: string): void {
  const seen = new Set<unknown>();
  for (let c: unknown = e; c instanceof Error && !seen.has(c); c = (c as { cause?: unknown }).cause) {
    seen.add(c);
    if (c instanceof TypeError || c instanceof RangeError || c instanceof ReferenceError || c instanceof SyntaxError) {
      throw new Error(`${stage} wrapped an internal error: ${c.stack ?? c.message}`);
    }
  }
}

/** Fails unless `e` is a DockerfileError located on a line of `text`. */
function expectLocated(e: unknown, text: string, stage: string): void {
  if (!(e instanceof DockerfileError)) {
    throw new Error(`${stage} threw a non-DockerfileError: ${(e as Error)?.stack ?? String(e)}`);
  }
  internalCause(e, stage);
  if (!e.location) throw new Error(`${stage} threw an unlocated DockerfileError ${e.code}: ${e.message}`);
  const { line, endLine, column } = e.location;
  const n = lineCount(text);
  if (!(Number.isInteger(line) && line >= 1 && line <= n)) throw new Error(`${stage}: error line ${line} outside 1..${n}: ${e.message}`);
  if (!(Number.isInteger(endLine) && endLine >= line && endLine <= n)) throw new Error(`${stage}: error endLine ${endLine} outside ${line}..${n}: ${e.message}`);
  if (!(Number.isInteger(column) && column >= 1)) throw new Error(`${stage}: error column ${column}: ${e.message}`);
}

/** Whole-file errors of the converter that buildkit also reports without a line. */
const UNLOCATED_CONVERT_DETAILS = [/^dockerfile contains no stages to build$/, /^target stage .* could not be found$/];

const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;

/** What the base image and the command line contribute: ONBUILD triggers, build args, a target. */
interface BuildInputs {
  onBuild: string[];
  buildArgs: Record<string, string>;
  target?: string;
}
const buildInputsArb: fc.Arbitrary<BuildInputs> = fc.record(
  {
    onBuild: fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.array(fc.oneof(lineInstructionArb.map((l) => l.replace(/\n$/, '')), fc.constantFrom('FROM x', 'ONBUILD RUN x', 'RUN a\nRUN b', '', 'COPY --from=0 a b')), { maxLength: 3 }) }),
    buildArgs: fc.dictionary(fc.constantFrom('A', 'B', 'HTTP_PROXY', 'BUILDPLATFORM', 'TARGETOS', 'x y', ''), fc.constantFrom('x y', '$A', '${B:-z}', '', 'linux/arm64', '\\')),
    target: fc.constantFrom('builder', 'base', 'final', 's0', '0', 'nope'),
  },
  { requiredKeys: ['onBuild', 'buildArgs'] },
);

async function checkDockerfile(text: string, inputs: BuildInputs = { onBuild: [], buildArgs: { A: 'x y', HTTP_PROXY: 'p' } }): Promise<void> {
  const started = performance.now();
  let parsed;
  try {
    const res = parseDockerfile(text);
    parsed = parseInstructions(res.ast);
  } catch (e) {
    expectLocated(e, text, 'parse');
    return;
  }
  expect(Array.isArray(parsed.stages)).toBe(true);
  try {
    await convertDockerfile(
      text,
      { targetPlatform: PLATFORM, buildPlatform: PLATFORM, buildArgs: inputs.buildArgs, ...(inputs.target !== undefined ? { target: inputs.target } : {}) },
      async () => ({ Env: ['PATH=/bin', 'B=$A'], WorkingDir: 'rel', User: '1', ...(inputs.onBuild.length ? { OnBuild: inputs.onBuild } : {}) }),
    );
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw new Error(`convert threw a non-DockerfileError: ${(e as Error)?.stack ?? String(e)}`);
    internalCause(e, 'convert');
    if (e.location || !UNLOCATED_CONVERT_DETAILS.some((r) => r.test(e.detail))) expectLocated(e, text, 'convert');
  }
  const ms = performance.now() - started;
  if (ms > TIME_BOX_MS) throw new Error(`case took ${ms.toFixed(0)} ms (time box ${TIME_BOX_MS} ms)`);
}

describe('fuzz: Dockerfile front end', () => {
  it('has a corpus', () => {
    expect(CORPUS.length).toBeGreaterThan(10);
  });

  it(
    'parse → instructions → convert throws only located DockerfileErrors and stays within the time box',
    async () => {
      await fc.assert(fc.asyncProperty(dockerfileArb, buildInputsArb, checkDockerfile), fuzzParams(4000, 0.6));
    },
    fuzzTimeout(),
  );

  const nestedArb = fc
    .tuple(fc.constantFrom('${A:-', '${A:+', '${A/', '${B-', '"${A:-', '${A%%'), fc.integer({ min: 10, max: 12_000 }), fc.constantFrom('}', '"}', ''))
    .map(([open, n, close]) => open.repeat(n) + 'x' + close.repeat(n));
  const wordArb0 = fc.array(fc.oneof(fc.constantFrom(...TOKENS, '${', '${A', '${A:', '${A:?}', '${A?}', '${:}', '${1}', '${A/', '${A#', '$A', '$1', '$@', '$*', '$#', '${A-${B:-$C}}', '\\$', '`$'), fc.string({ maxLength: 4 }), fc.string({ unit: 'grapheme', maxLength: 3 })), { maxLength: 12 }).map((a) => a.join(''));
  const wordArb = fc.oneof({ weight: 40, arbitrary: wordArb0 }, { weight: 1, arbitrary: nestedArb });
  const envArb = fc.dictionary(fc.constantFrom('A', 'B', 'C', 'PATH', '1', 'é'), fc.oneof(wordArb0, fc.string({ maxLength: 6 })), { maxKeys: 4 });
  const optsArb = fc.record({ rawQuotes: fc.boolean(), rawEscapes: fc.boolean(), skipProcessQuotes: fc.boolean(), skipUnsetEnv: fc.boolean() }, { requiredKeys: [] });

  it(
    'shell-lex expansion throws only EXPANSION_ERROR DockerfileErrors',
    () => {
      fc.assert(
        fc.property(wordArb, envArb, fc.constantFrom('\\', '`'), optsArb, (word, env, esc, opts) => {
          const lex = new ShellLex(esc, opts);
          const started = performance.now();
          for (const mode of ['word', 'words'] as const) {
            try {
              const r = mode === 'word' ? lex.processWord(word, envFrom(env)).result : lex.processWords(word, envFrom(env));
              expect(typeof r === 'string' || Array.isArray(r)).toBe(true);
            } catch (e) {
              if (!(e instanceof DockerfileError) || e.code !== 'EXPANSION_ERROR') throw new Error(`processWord${mode === 'words' ? 's' : ''} threw ${(e as Error)?.stack ?? String(e)}`);
              internalCause(e, 'expansion');
            }
          }
          const ms = performance.now() - started;
          if (ms > TIME_BOX_MS) throw new Error(`expansion took ${ms.toFixed(0)} ms`);
        }),
        fuzzParams(5000, 0.4),
      );
    },
    fuzzTimeout(),
  );
});
