/**
 * Build progress renderers: `plain` writes buildkit-style numbered lines for CI logs (step,
 * its output prefixed with the elapsed time, CACHED/DONE/ERROR); `tty` redraws a live view
 * (steps with timers, the tail of each running step's output); `quiet` prints nothing.
 */
import { createHash } from 'node:crypto';
import type { ProgressEvent, ProgressSink } from '../../../builder/solver/progress.js';

/** A progress mode of `--progress`. */
export type ProgressMode = 'plain' | 'tty' | 'quiet' | 'rawjson';

/** A renderer: the event sink, final lines, and `close` (MUST be called; stops the tty redraw). */
export type ProgressRenderer = ProgressSink & { finish(line: string): void; close(): void };

/** Makes the sink that renders events to `out` in `mode`. */
export function progressRenderer(mode: ProgressMode, out: NodeJS.WritableStream & { columns?: number }): ProgressRenderer {
  if (mode === 'tty') return ttyRenderer(out);
  if (mode === 'rawjson') return rawJsonRenderer(out);
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

/**
 * `--progress=rawjson`: one BuildKit `SolveStatus` JSON object per line, as `docker buildx build
 * --progress=rawjson` prints it (client.SolveStatus's JSON field names): `vertexes` (digest,
 * name, started, completed, cached, error), `statuses` (the export steps), `logs` (vertex, stream
 * 1 = stdout / 2 = stderr, base64 `data`, timestamp) and `warnings` (level, base64 `short`).
 * A vertex digest is a sha256 of the step's identity within the build.
 */
function rawJsonRenderer(out: NodeJS.WritableStream): ProgressRenderer {
  const started = new Map<string, string>();
  const digestOf = (id: string, name: string) => `sha256:${createHash('sha256').update(`${id}\n${name}`).digest('hex')}`;
  const now = () => new Date().toISOString();
  const emit = (status: Record<string, unknown>) => out.write(JSON.stringify(status) + '\n');
  const exportVertex = { digest: '', name: 'exporting to image', started: '' };
  let closed = false;
  const sink = (e: ProgressEvent): void => {
    if (closed) return;
    const t = now();
    if (e.kind === 'warning') {
      emit({ warnings: [{ level: 1, short: Buffer.from(e.message).toString('base64') }] });
      return;
    }
    const vertex = digestOf(e.id, e.name);
    if (e.kind === 'output' || e.kind === 'cache-miss') {
      const data = e.kind === 'output' ? e.chunk : Buffer.from(`cache miss: ${e.reason}\n`);
      emit({ logs: [{ vertex, stream: e.kind === 'output' && e.stream === 'stdout' ? 1 : 2, data: data.toString('base64'), timestamp: t }] });
      return;
    }
    switch (e.state) {
      case 'start':
        started.set(e.id, t);
        emit({ vertexes: [{ digest: vertex, name: e.name, started: t }] });
        break;
      case 'cached':
        emit({ vertexes: [{ digest: vertex, name: e.name, started: t, completed: t, cached: true }] });
        break;
      case 'done': {
        const s = started.get(e.id) ?? new Date(Date.now() - (e.ms ?? 0)).toISOString();
        emit({ vertexes: [{ digest: vertex, name: e.name, started: s, completed: t }] });
        break;
      }
      case 'error':
        emit({ vertexes: [{ digest: vertex, name: e.name, started: started.get(e.id) ?? t, completed: t, error: 'failed' }] });
        break;
    }
  };
  return Object.assign(sink, {
    finish(line: string) {
      if (closed) return;
      const t = now();
      if (!exportVertex.digest) {
        exportVertex.digest = digestOf('export', exportVertex.name);
        exportVertex.started = t;
        emit({ vertexes: [{ digest: exportVertex.digest, name: exportVertex.name, started: t }] });
      }
      const name = line.replace(/ done$/, '');
      emit({ statuses: [{ id: name, vertex: exportVertex.digest, name, current: 0, timestamp: t, started: t, completed: t }] });
    },
    close() {
      if (closed) return;
      closed = true;
      if (exportVertex.digest) emit({ vertexes: [{ digest: exportVertex.digest, name: exportVertex.name, started: exportVertex.started, completed: now() }] });
    },
  });
}
