/**
 * Build progress renderers: `plain` writes buildkit-style numbered lines for CI logs (step,
 * its output prefixed with the elapsed time, CACHED/DONE/ERROR); `tty` redraws a live view
 * (steps with timers, the tail of each running step's output); `quiet` prints nothing.
 */
import type { ProgressEvent, ProgressSink } from '../../../builder/solver/progress.js';

/** A progress mode of `--progress`. */
export type ProgressMode = 'plain' | 'tty' | 'quiet';

/** A renderer: the event sink, final lines, and `close` (MUST be called; stops the tty redraw). */
export type ProgressRenderer = ProgressSink & { finish(line: string): void; close(): void };

/** Makes the sink that renders events to `out` in `mode`. */
export function progressRenderer(mode: ProgressMode, out: NodeJS.WritableStream & { columns?: number }): ProgressRenderer {
  if (mode === 'tty') return ttyRenderer(out);
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
    if (e.kind === 'cache-miss') {
      out.write(`#${num(e.id)} cache miss: ${e.reason}\n`);
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
    close() {},
  });
}

interface TtyStep {
  name: string;
  state: 'start' | 'cached' | 'done' | 'error';
  start: number;
  end?: number;
  tail: string[];
  partial: string;
}

const TAIL = 6;

/** The live view: redrawn in place every 100 ms and on every step change. */
function ttyRenderer(out: NodeJS.WritableStream & { columns?: number }): ProgressRenderer {
  const t0 = Date.now();
  const steps = new Map<string, TtyStep>();
  const warnings: string[] = [];
  const finals: string[] = [];
  let drawn = 0;
  let closed = false;
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  const fit = (l: string) => {
    const w = out.columns ?? 100;
    return l.length > w ? l.slice(0, Math.max(0, w - 1)) : l;
  };
  const draw = () => {
    const lines: string[] = [];
    const done = [...steps.values()].filter((s) => s.state !== 'start').length;
    lines.push(`[+] Building ${secs(Date.now() - t0)} (${done}/${steps.size})${closed ? ' FINISHED' : ''}`);
    for (const s of steps.values()) {
      if (s.state === 'cached') lines.push(` => CACHED ${s.name}`);
      else {
        const t = secs((s.end ?? Date.now()) - s.start);
        lines.push(` => ${s.state === 'error' ? 'ERROR ' : ''}${s.name}${' '.repeat(Math.max(1, (out.columns ?? 100) - s.name.length - t.length - 5))}${t}`);
      }
      if (s.state === 'start' || s.state === 'error') for (const l of [...s.tail, ...(s.partial ? [s.partial] : [])].slice(-TAIL)) lines.push(`\x1b[2m => => # ${l}\x1b[0m`);
    }
    for (const w of warnings) lines.push(`WARNING: ${w}`);
    out.write((drawn ? `\x1b[${drawn}A\x1b[J` : '') + lines.map(fit).join('\n') + '\n');
    drawn = lines.length;
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  const sink = (e: ProgressEvent): void => {
    if (closed) return;
    if (e.kind === 'warning') warnings.push(e.message);
    else if (e.kind === 'cache-miss') warnings.push(`cache miss ${e.name}: ${e.reason}`);
    else if (e.kind === 'output') {
      const s = steps.get(e.id);
      if (!s) return;
      const lines = (s.partial + e.chunk.toString('utf8')).split('\n');
      s.partial = lines.pop() ?? '';
      s.tail.push(...lines);
      if (s.tail.length > TAIL) s.tail.splice(0, s.tail.length - TAIL);
      return;
    } else {
      const s = steps.get(e.id) ?? { name: e.name, state: e.state, start: Date.now(), tail: [], partial: '' };
      s.state = e.state;
      if (e.state !== 'start') s.end = Date.now();
      if (e.state === 'done' && e.ms !== undefined) s.start = s.end! - e.ms;
      steps.set(e.id, s);
    }
    draw();
  };
  return Object.assign(sink, {
    finish(line: string) {
      finals.push(line);
    },
    close() {
      if (closed) return;
      clearInterval(timer);
      closed = true;
      draw();
      for (const l of finals) out.write(` => ${l}\n`);
    },
  });
}
