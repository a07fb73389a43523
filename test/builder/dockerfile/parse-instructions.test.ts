import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../../builder/dockerfile/errors.js';
import { parseGoDuration, parseInstructions, parseMount, ramInBytes } from '../../../builder/dockerfile/parse-instructions.js';
import { parseDockerfile } from '../../../builder/dockerfile/parser.js';
import type { RunInstruction } from '../../../builder/dockerfile/instructions.js';

// Values checked against Go's time.ParseDuration and docker/go-units RAMInBytes.
const durations: [string, number | string][] = [
  ['30s', 30e9], ['1m30s', 90e9], ['1.5s', 1.5e9], ['500ms', 5e8], ['1h2m3s4ms5us6ns', 3723004005006], ['0', 0],
  ['-1.5h', -5400e9], ['.5s', 5e8], ['1.s', 1e9], ['+3m', 180e9], ['10µs', 10000],
  ['1', 'time: missing unit in duration "1"'], ['1d', 'time: unknown unit "d" in duration "1d"'], ['', 'time: invalid duration ""'],
  ['1e3s', 'time: unknown unit "e" in duration "1e3s"'],
];
const sizes: [string, number | undefined][] = [['64m', 67108864], ['1.5GiB', 1610612736], ['512', 512], ['1 KB', 1024], ['2t', 2199023255552], ['10x', undefined], ['1.5.5m', undefined]];

describe('Go duration and size parsing', () => {
  for (const [s, want] of durations) {
    it(`duration ${JSON.stringify(s)}`, () => {
      if (typeof want === 'number') expect(parseGoDuration(s)).toBe(want);
      else expect(() => parseGoDuration(s)).toThrow(want);
    });
  }
  for (const [s, want] of sizes) {
    it(`size ${JSON.stringify(s)}`, () => {
      if (want === undefined) expect(() => ramInBytes(s)).toThrow(DockerfileError);
      else expect(ramInBytes(s)).toBe(want);
    });
  }
});

describe('RUN --mount', () => {
  const id = (s: string) => s;
  it('applies buildkit defaults per type', () => {
    expect(parseMount('target=/src', id)).toMatchObject({ type: 'bind', readOnly: true, target: '/src' });
    expect(parseMount('type=cache,target=/c', id)).toMatchObject({ type: 'cache', readOnly: false, cacheSharing: '' });
    expect(parseMount('type=tmpfs,dst=/t,size=1g', id)).toMatchObject({ type: 'tmpfs', readOnly: false, sizeLimit: 1073741824 });
    expect(parseMount('type=secret,id=tok', id)).toMatchObject({ type: 'secret', readOnly: true, cacheId: 'tok', required: false });
    expect(parseMount('type=ssh,required', id)).toMatchObject({ type: 'ssh', required: true });
    expect(parseMount('type=cache,target=/c,mode=0755,uid=1,gid=2,ro', id)).toMatchObject({ mode: 0o755, uid: 1, gid: 2, readOnly: true });
    expect(parseMount('type=bind,source=/a,target=/b,rw=true', id)).toMatchObject({ readOnly: false, source: '/a' });
    expect(parseMount('"type=bind","target=/x,y"', id)).toMatchObject({ target: '/x,y' });
  });
  it('rejects what buildkit rejects', () => {
    expect(() => parseMount('type=bind,target=/x,mode=0700', id)).toThrow('mode not allowed for "bind" type mounts');
    expect(() => parseMount('type=secret,from=x,target=/s', id)).toThrow('secret mount should not have a from');
    expect(() => parseMount('type=secret', id)).toThrow('invalid secret mount. one of source, target required');
    expect(() => parseMount('type=bind,sharing=locked,target=/x', id)).toThrow('invalid cache sharing set for bind mount');
    expect(() => parseMount('type=cache,target=/x,sharing=lockd', id)).toThrow('unsupported sharing value "lockd" (did you mean locked?)');
    expect(() => parseMount('type=cache,targt=/x', id)).toThrow("unexpected key 'targt' in 'targt=/x' (did you mean target?)");
    expect(() => parseMount('type=bind,target=/x,ro=maybe', id)).toThrow('invalid value for ro: maybe');
    expect(() => parseMount('from=$STAGE,target=/x')).toThrow("'from' doesn't support variable expansion");
  });
  it('defers validation of values with variables to expansion', () => {
    const df = parseInstructions(parseDockerfile('FROM busybox\nRUN --mount=type=$T,target=/x true\n').ast);
    expect((df.stages[0]!.instructions[0] as RunInstruction).mounts).toEqual(['type=$T,target=/x']);
  });
});

describe('located instruction errors', () => {
  it('attaches the location once, at the instruction', () => {
    let err: DockerfileError | undefined;
    try {
      parseInstructions(parseDockerfile('FROM busybox\n  COPY --chmod=1 --form=x a b\n', { file: 'build/Dockerfile' }).ast, { file: 'build/Dockerfile' });
    } catch (e) {
      err = e as DockerfileError;
    }
    expect(err?.message).toBe('build/Dockerfile:2:18: unknown flag: --form (did you mean from?)');
    expect(err?.location).toEqual({ file: 'build/Dockerfile', line: 2, column: 18, endLine: 2 });
    expect(err?.code).toBe('UNKNOWN_FLAG');
    expect(err?.suggestion).toBe('from');
  });
});
