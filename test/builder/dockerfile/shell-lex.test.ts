import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envFrom, ShellLex } from '../../../builder/dockerfile/shell-lex.js';
import { DockerfileError } from '../../../builder/dockerfile/errors.js';

interface Row {
  line: number;
  words: boolean;
  input: string;
  expected: string;
  error: string;
  env: Map<string, string>;
  escape: string;
}

function loadTable(): Row[] {
  const text = readFileSync(new URL('../../../testdata/shell/expansion.txt', import.meta.url), 'utf8');
  const rows: Row[] = [];
  const env = new Map<string, string>();
  let escape = '\\';
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    if (raw.startsWith('ENV ')) {
      const kv = raw.slice(4);
      const eq = kv.indexOf('=');
      env.set(kv.slice(0, eq), kv.slice(eq + 1));
      return;
    }
    if (raw.startsWith('UNSET ')) {
      env.delete(raw.slice(6));
      return;
    }
    if (raw.startsWith('ESCAPE ')) {
      escape = raw.slice(7);
      return;
    }
    const parts = raw.split(/ \|(?: |$)/);
    if (parts.length !== 3) throw new Error(`expansion.txt:${i + 1}: want 3 fields separated by " | "`);
    let input = parts[0]!;
    const words = input.startsWith('words: ');
    if (words) input = input.slice(7);
    rows.push({ line: i + 1, words, input, expected: parts[1]!.trim(), error: parts[2]!.trim(), env: new Map(env), escape });
  });
  return rows;
}

const rows = loadTable();

describe('shell word expansion table', () => {
  it('has at least 60 cases', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
  });
  for (const r of rows) {
    it(`line ${r.line}: ${r.words ? 'words ' : ''}${r.input}`, () => {
      const lex = new ShellLex(r.escape);
      const env = envFrom(r.env);
      const run = () => (r.words ? lex.processWords(r.input, env).join(',') : lex.processWord(r.input, env).result);
      if (r.error) {
        let err: unknown;
        try {
          run();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DockerfileError);
        expect((err as DockerfileError).code).toBe('EXPANSION_ERROR');
        expect((err as Error).message).toContain(r.error);
      } else {
        expect(run()).toBe(r.expected);
      }
    });
  }
});

describe('ShellLex', () => {
  it('reports matched and unmatched variables', () => {
    const lex = new ShellLex();
    const r = lex.processWord('$A ${B:-x} ${C+y} "$D"', envFrom({ A: '1', C: '' }));
    expect(r.result).toBe('1 x y ');
    expect([...r.matched].sort()).toEqual(['A', 'C']);
    expect([...r.unmatched].sort()).toEqual(['B', 'D']);
  });
  it('keeps unset references with skipUnsetEnv', () => {
    const lex = new ShellLex('\\', { skipUnsetEnv: true });
    expect(lex.processWord('$X ${Y} ${Z:-d} ${W/a/b}', envFrom({})).result).toBe('$X ${Y} ${Z:-d} ${W/a/b}');
  });
  it('keeps quotes and escapes when asked (heredoc delimiter detection)', () => {
    const lex = new ShellLex('\\', { rawQuotes: true, rawEscapes: true });
    expect(lex.processWords(`<<'EOF' "a b" c\\ d`, envFrom({}))).toEqual(["<<'EOF'", '"a b"', 'c\\ d']);
  });
  it('names the word in the error', () => {
    expect(() => new ShellLex().processWord('${X:?gone}', envFrom({}))).toThrow('failed to process "${X:?gone}": X: gone');
  });
});

describe('ShellLex properties', () => {
  it('leaves words without quotes, escapes, $ and << unchanged and splits them on white space', async () => {
    const fc = await import('fast-check');
    const plain = fc.string({ unit: fc.constantFrom('a', 'b', 'Z', '0', '/', '.', '-', '_', ':', '=', ' ', '\t', 'é', '中'), maxLength: 40 });
    fc.assert(
      fc.property(plain, (s) => {
        const lex = new ShellLex();
        expect(lex.processWord(s, envFrom({})).result).toBe(s);
        expect(lex.processWords(s, envFrom({}))).toEqual(s.split(/[ \t]+/).filter(Boolean));
      }),
    );
  });
  it('expands a set variable inside double quotes to exactly its value', async () => {
    const fc = await import('fast-check');
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (v) => {
        const lex = new ShellLex();
        expect(lex.processWord('"${V}"', envFrom({ V: v })).result).toBe(v);
        expect(lex.processWords('"$V"', envFrom({ V: v }))).toEqual(v === '' ? [] : [v]);
      }),
    );
  });
});
