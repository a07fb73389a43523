import { mkdtempSync, readFileSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonLogWriter, readLog } from '../../../runtime/monitor/json-log.js';

describe('json-file log', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'tsbuild-jsonlog-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes one docker json-file entry per line and stream, splitting at 16 KiB and keeping a last partial line', async () => {
    const path = join(tmp(), 'c-json.log');
    const w = await JsonLogWriter.open(path);
    const out = new PassThrough();
    const err = new PassThrough();
    const done = Promise.all([w.pipe(out, 'stdout'), w.pipe(err, 'stderr')]);
    out.write('hel');
    out.write('lo\nwor');
    out.write('ld\n');
    err.write('oops\n');
    out.end(`${'x'.repeat(16 * 1024 + 10)}\nno newline`);
    err.end();
    await done;
    await w.close();
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    expect(lines.filter((l) => l.stream === 'stdout').map((l) => l.log)).toEqual(['hello\n', 'world\n', 'x'.repeat(16 * 1024), `${'x'.repeat(10)}\n`, 'no newline']);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.log)).toEqual(['oops\n']);
    for (const l of lines) expect(Object.keys(l)).toEqual(['log', 'stream', 'time']);
    const { entries, end } = await readLog(path);
    expect(entries).toEqual(lines);
    expect(end).toBe(readFileSync(path).length);
  });

  it('readLog resumes from an offset and leaves a line still being written for later', async () => {
    const path = join(tmp(), 'c-json.log');
    expect(await readLog(path)).toEqual({ entries: [], end: 0 });
    const a = `${JSON.stringify({ log: 'a\n', stream: 'stdout', time: '2026-01-01T00:00:00.000Z' })}\n`;
    const b = JSON.stringify({ log: 'b\n', stream: 'stderr', time: '2026-01-01T00:00:01.000Z' });
    appendFileSync(path, a + b.slice(0, 10));
    const first = await readLog(path);
    expect(first.entries.map((e) => e.log)).toEqual(['a\n']);
    expect(first.end).toBe(Buffer.byteLength(a));
    appendFileSync(path, `${b.slice(10)}\n`);
    const second = await readLog(path, first.end);
    expect(second.entries).toEqual([{ log: 'b\n', stream: 'stderr', time: '2026-01-01T00:00:01.000Z' }]);
  });
});

describe('json-file log rotation', () => {
  it('rotates at max-size and keeps max-file files, oldest dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-jsonlog-rot-'));
    try {
      const path = join(dir, 'c-json.log');
      const w = await JsonLogWriter.open(path, { maxSize: 1000, maxFiles: 3 });
      const out = new PassThrough();
      const done = w.pipe(out, 'stdout');
      for (let i = 0; i < 100; i++) out.write(`line ${String(i).padStart(3, '0')}\n`);
      out.end();
      await done;
      await w.close();
      const { rotatedLogs } = await import('../../../runtime/monitor/json-log.js');
      const files = [...(await rotatedLogs(path)), path];
      expect(files).toEqual([`${path}.2`, `${path}.1`, path]);
      const all: string[] = [];
      for (const f of files) {
        expect(readFileSync(f).length).toBeLessThanOrEqual(1000);
        all.push(...(await readLog(f)).entries.map((e) => e.log));
      }
      // the newest lines survive, in order, with nothing lost between the kept files
      expect(all.at(-1)).toBe('line 099\n');
      const first = Number(all[0]!.slice(5, 8));
      expect(all).toEqual(Array.from({ length: 100 - first }, (_, k) => `line ${String(first + k).padStart(3, '0')}\n`));
      expect(first).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
