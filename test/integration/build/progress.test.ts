import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressRenderer } from '../../../src/cli/wiring/progress.js';

function capture(): { out: PassThrough & { columns?: number }; text: () => string } {
  const out = new PassThrough() as PassThrough & { columns?: number };
  out.columns = 80;
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('build progress renderers', () => {
  it('plain: numbered steps, output lines with elapsed time, CACHED and DONE', () => {
    const { out, text } = capture();
    const p = progressRenderer('plain', out);
    p({ kind: 'step', id: 'a', name: '[2/3] RUN make', state: 'start' });
    p({ kind: 'output', id: 'a', name: '[2/3] RUN make', stream: 'stdout', chunk: Buffer.from('line one\nline t') });
    p({ kind: 'output', id: 'a', name: '[2/3] RUN make', stream: 'stderr', chunk: Buffer.from('wo\n') });
    p({ kind: 'step', id: 'a', name: '[2/3] RUN make', state: 'done', ms: 1234 });
    p({ kind: 'step', id: 'b', name: '[3/3] COPY x /x', state: 'cached' });
    p.finish('writing image sha256:abc done');
    p.close();
    const t = text();
    expect(t).toMatch(/^#1 \[2\/3\] RUN make\n#1 \d+\.\d{3} line one\n#1 \d+\.\d{3} line two\n#1 DONE 1\.2s\n\n#2 \[3\/3\] COPY x \/x\n#2 CACHED\n\n#3 writing image sha256:abc done\n$/);
  });

  it('tty: a live view with timers and the tail of running steps; FINISHED on close', () => {
    const { out, text } = capture();
    const p = progressRenderer('tty', out);
    p({ kind: 'step', id: 'a', name: '[2/3] RUN make', state: 'start' });
    for (let i = 0; i < 10; i++) p({ kind: 'output', id: 'a', name: '[2/3] RUN make', stream: 'stdout', chunk: Buffer.from(`out ${i}\n`) });
    p({ kind: 'step', id: 'b', name: '[3/3] COPY x /x', state: 'cached' });
    const live = text();
    expect(live).toContain(' => => # out 4');
    p({ kind: 'step', id: 'a', name: '[2/3] RUN make', state: 'done', ms: 10 });
    p.finish('naming to docker.io/library/x:latest done');
    p.close();
    const t = text();
    const last = t.slice(t.lastIndexOf('[+] Building'));
    expect(last).toMatch(/^\[\+\] Building \d+\.\ds \(2\/2\) FINISHED\n => \[2\/3\] RUN make +0\.0s\n => CACHED \[3\/3\] COPY x \/x\n => naming to docker.io\/library\/x:latest done\n$/);
    expect(last).not.toContain('out 9');
    p({ kind: 'step', id: 'c', name: 'late', state: 'start' });
    expect(text()).toBe(t);
  });

  it('quiet prints nothing', () => {
    const { out, text } = capture();
    const p = progressRenderer('quiet', out);
    p({ kind: 'step', id: 'a', name: 'x', state: 'start' });
    p({ kind: 'warning', message: 'w' });
    p.finish('done');
    p.close();
    expect(text()).toBe('');
  });
});
