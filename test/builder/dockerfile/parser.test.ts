import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../../builder/dockerfile/errors.js';
import { dumpNode, goQuoteExact, parseDockerfile, type ParseResult } from '../../../builder/dockerfile/parser.js';
import { parseInstructions } from '../../../builder/dockerfile/parse-instructions.js';

const root = new URL('../../../testdata/dockerfile/', import.meta.url).pathname;
const update = process.env.UPDATE_GOLDEN === '1';

/** Golden dump: AST s-expressions with line ranges and heredocs, warnings, then the typed instructions. */
function dump(text: string): string {
  const res: ParseResult = parseDockerfile(text);
  const out: string[] = ['# ast'];
  for (const n of res.ast.children) {
    out.push(`L${n.startLine}-${n.endLine}:${n.column} (${dumpNode(n)})${n.json ? ' json' : ''}`);
    for (const h of n.heredocs) {
      out.push(`  heredoc ${goQuoteExact(h.name)} fd=${h.fileDescriptor} expand=${h.expand} chomp=${h.chomp} content=${goQuoteExact(h.content)}`);
    }
  }
  out.push(`# escape ${res.escapeToken}`);
  if (res.directives.length) out.push('# directives', ...res.directives.map((d) => `L${d.line} ${d.name}=${d.value}`));
  if (res.warnings.length) out.push('# warnings', ...res.warnings.map((w) => `L${w.location?.line ?? 0} ${w.short}`));
  const parsed = parseInstructions(res.ast);
  out.push('# instructions');
  const strip = (v: unknown): unknown =>
    JSON.parse(JSON.stringify(v, (k, val: unknown) => {
      if (k === 'original') return undefined;
      if (k === 'location') {
        const l = val as { line: number; column: number; endLine: number };
        return `${l.line}:${l.column}-${l.endLine}`;
      }
      return val;
    }));
  out.push(JSON.stringify(strip(parsed), null, 1));
  return out.join('\n') + '\n';
}

const positive = readdirSync(join(root, 'parse')).sort();
const negative = readdirSync(join(root, 'parse-negative')).sort();

describe('Dockerfile parse goldens', () => {
  it('has at least 25 positive and 12 negative cases', () => {
    expect(positive.length).toBeGreaterThanOrEqual(25);
    expect(negative.length).toBeGreaterThanOrEqual(12);
  });
  for (const c of positive) {
    it(c, () => {
      const text = readFileSync(join(root, 'parse', c, 'Dockerfile'), 'utf8');
      const got = dump(text);
      const file = join(root, 'parse', c, 'result');
      if (update || !existsSync(file)) {
        if (!update) throw new Error(`missing ${file}; run with UPDATE_GOLDEN=1`);
        writeFileSync(file, got);
      }
      expect(got).toBe(readFileSync(file, 'utf8'));
    });
  }
});

describe('Dockerfile negative cases', () => {
  for (const c of negative) {
    it(c, () => {
      const text = readFileSync(join(root, 'parse-negative', c, 'Dockerfile'), 'utf8');
      const want = readFileSync(join(root, 'parse-negative', c, 'error'), 'utf8').trim();
      let err: unknown;
      try {
        parseInstructions(parseDockerfile(text).ast);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DockerfileError);
      const de = err as DockerfileError;
      expect(de.location).toBeDefined();
      const m = /^Dockerfile:(\d+):(\d+): /.exec(want);
      expect(m).not.toBeNull();
      expect(de.location!.line).toBe(Number(m![1]));
      expect(de.location!.column).toBe(Number(m![2]));
      expect(de.message).toBe(want);
    });
  }
});

describe('line length limit (Go bufio.Scanner, 64 KiB)', () => {
  const run = (text: string) => () => parseDockerfile(text);
  it('accepts a line of exactly 64 KiB including its newline', () => {
    expect(parseDockerfile('FROM a\nRUN ' + 'x'.repeat(65531) + '\n').ast.children).toHaveLength(2);
    expect(parseDockerfile('FROM a\nRUN ' + 'x'.repeat(65531)).ast.children).toHaveLength(2);
  });
  it('rejects longer lines at their line', () => {
    expect(run('FROM a\nRUN ' + 'x'.repeat(65532) + '\n')).toThrow('Dockerfile:2:1: dockerfile line greater than max allowed size of 65535');
    expect(run('FROM a\nRUN ' + 'x'.repeat(65532))).toThrow('Dockerfile:2:1: dockerfile line greater than max allowed size of 65535');
    expect(run('RUN ' + 'x'.repeat(70000))).toThrow('file with no instructions');
  });
});
