/**
 * Build progress renderers: `plain` writes buildkit-style numbered lines for CI logs (step,
 * its output prefixed with the elapsed time, CACHED/DONE/ERROR); `tty` is the same stream
 * without per-line output timestamps; `quiet` prints nothing.
 */
import type { ProgressEvent, ProgressSink } from '../../../builder/solver/progress.js';

/** A progress mode of `--progress`. */
export type ProgressMode = 'plain' | 'tty' | 'quiet';

/** Makes the sink that renders events to `out` in `mode`. */
export function progressRenderer(mode: ProgressMode, out: NodeJS.WritableStream): ProgressSink & { finish(line: string): void } {
  let next = 1;
  const nums = new Map<string, number>();
  const started = new Map<string, number>();
  const partial = new Map<string, string>();
  const num = (id: string) => {
    let n = nums.get(id);
    if (n === undefined) nums.set(id, (n = next++));
    return n;
  };
  const flush = (id: string) => {
    const rest = partial.get(id);
    if (rest) out.write(`#${num(id)} ${elapsed(id)} ${rest}\n`);
    partial.delete(id);
  };
  const elapsed = (id: string) => ((Date.now() - (started.get(id) ?? Date.now())) / 1000).toFixed(3);
  const sink = (e: ProgressEvent): void => {
    if (mode === 'quiet') return;
    if (e.kind === 'warning') {
      out.write(`WARNING: ${e.message}\n`);
      return;
    }
    if (e.kind === 'output') {
      const text = (partial.get(e.id) ?? '') + e.chunk.toString('utf8');
      const lines = text.split('\n');
      partial.set(e.id, lines.pop() ?? '');
      for (const l of lines) out.write(mode === 'plain' ? `#${num(e.id)} ${elapsed(e.id)} ${l}\n` : `#${num(e.id)} ${l}\n`);
      return;
    }
    const n = num(e.id);
    switch (e.state) {
      case 'start':
        started.set(e.id, Date.now());
        out.write(`#${n} ${e.name}\n`);
        break;
      case 'cached':
        out.write(`#${n} ${e.name}\n#${n} CACHED\n\n`);
        break;
      case 'done':
        flush(e.id);
        if (!started.has(e.id)) out.write(`#${n} ${e.name}\n`);
        out.write(`#${n} DONE ${((e.ms ?? 0) / 1000).toFixed(1)}s\n\n`);
        break;
      case 'error':
        flush(e.id);
        out.write(`#${n} ERROR\n\n`);
        break;
    }
  };
  return Object.assign(sink, {
    finish(line: string) {
      if (mode !== 'quiet') out.write(`#${next++} ${line}\n`);
    },
  });
}
