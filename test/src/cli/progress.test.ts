import { describe, expect, it } from 'vitest';
import { formatBytes, progressMode, transferProgress } from '../../../src/cli/progress.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

function sink(): { out: NodeJS.WritableStream; text: () => string } {
  let s = '';
  const out = { write: (c: string) => ((s += c), true) } as unknown as NodeJS.WritableStream;
  return { out, text: () => s };
}

/** What a terminal shows after the escape sequences the tty renderer writes (cursor up, erase line). */
function screen(raw: string): string[] {
  const lines: string[] = [];
  let row = 0;
  for (const part of raw.split(/(\x1b\[\d+A|\r\x1b\[2K|\n)/)) {
    const up = /^\x1b\[(\d+)A$/.exec(part);
    if (up) row -= Number(up[1]);
    else if (part === '\n') row++;
    else if (part === '\r\x1b[2K') lines[row] = '';
    else if (part) lines[row] = (lines[row] ?? '') + part;
  }
  return lines;
}

describe('transfer progress rendering', () => {
  it('chooses quiet with -q, tty on a terminal, plain otherwise', () => {
    expect(progressMode({ isTTY: true }, true)).toBe('quiet');
    expect(progressMode({ isTTY: true }, false)).toBe('tty');
    expect(progressMode({}, false)).toBe('plain');
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(40 << 20)).toBe('40.0 MiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.00 GiB');
  });

  it('plain: a start and a done line per blob with size, time and rate; no per-chunk lines', () => {
    let t = 0;
    const { out, text } = sink();
    const r = transferProgress(out, 'plain', { verb: 'downloading', now: () => t });
    r.onProgress!({ digest: A, state: 'start', done: 0, total: 4 << 20 });
    for (let i = 1; i <= 4; i++) {
      t += 500;
      r.onProgress!({ digest: A, state: 'progress', done: i << 20, total: 4 << 20 });
    }
    r.onProgress!({ digest: A, state: 'done', done: 4 << 20, total: 4 << 20 });
    r.onProgress!({ digest: B, state: 'done', done: 10, total: 10, skipped: true });
    r.finish();
    expect(text()).toBe('aaaaaaaaaaaa: downloading 4.0 MiB\naaaaaaaaaaaa: done 4.0 MiB in 2.00 s (2.0 MiB/s)\nbbbbbbbbbbbb: already exists\n');
  });

  it('plain: a continued download says where it continues and rates only the new bytes', () => {
    let t = 0;
    const { out, text } = sink();
    const r = transferProgress(out, 'plain', { verb: 'downloading', now: () => t });
    r.onProgress!({ digest: A, state: 'start', done: 3 << 20, total: 4 << 20 });
    t = 1000;
    r.onProgress!({ digest: A, state: 'done', done: 4 << 20, total: 4 << 20 });
    expect(text()).toBe('aaaaaaaaaaaa: downloading 4.0 MiB (continuing at 3.0 MiB)\naaaaaaaaaaaa: done 4.0 MiB in 1.00 s (1.0 MiB/s)\n');
  });

  it('tty: one line per blob updated in place, throttled, with bytes and the current rate', () => {
    let t = 0;
    const { out, text } = sink();
    let writes = 0;
    const counting = { write: (c: string) => (writes++, out.write(c)) } as unknown as NodeJS.WritableStream;
    const r = transferProgress(counting, 'tty', { verb: 'uploading', now: () => t, intervalMs: 100 });
    r.onProgress!({ digest: A, state: 'start', done: 0, total: 2 << 20 });
    r.onProgress!({ digest: B, state: 'start', done: 0, total: 1 << 20 });
    // many chunk events within one interval draw nothing new
    for (let i = 1; i <= 50; i++) r.onProgress!({ digest: A, state: 'progress', done: i * 1024, total: 2 << 20 });
    expect(writes).toBe(1);
    t = 1000;
    r.onProgress!({ digest: A, state: 'progress', done: 1 << 20, total: 2 << 20 });
    expect(writes).toBe(2);
    expect(screen(text())).toEqual(['aaaaaaaaaaaa: uploading 1.0 MiB / 2.0 MiB  50%  1.0 MiB/s', 'bbbbbbbbbbbb: uploading 0 B / 1.0 MiB   0%  0 B/s']);
    // all of B's bytes moved but not yet stored
    t = 1200;
    r.onProgress!({ digest: B, state: 'progress', done: 1 << 20, total: 1 << 20 });
    expect(screen(text())[1]).toBe('bbbbbbbbbbbb: uploading 1.0 MiB / 1.0 MiB 100%  finishing');
    t = 1500;
    r.onProgress!({ digest: B, state: 'done', done: 1 << 20, total: 1 << 20 });
    t = 2000;
    r.onProgress!({ digest: A, state: 'done', done: 2 << 20, total: 2 << 20 });
    r.finish();
    expect(screen(text())).toEqual(['aaaaaaaaaaaa: done 2.0 MiB in 2.00 s (1.0 MiB/s)', 'bbbbbbbbbbbb: done 1.0 MiB in 1.50 s (682.7 KiB/s)']);
  });

  it('quiet: no callback at all, so the library does not count bytes', () => {
    const { out, text } = sink();
    const r = transferProgress(out, 'quiet', { verb: 'downloading' });
    expect(r.onProgress).toBeUndefined();
    r.finish();
    expect(text()).toBe('');
  });
});
