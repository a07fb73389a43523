/**
 * The bench harness measures what it claims: peak RSS of the measured command (not of the wrapper or
 * the harness), wall time, exit codes, and alternation of the two sides. Runs the BUILT bench
 * (dist/bench), as `npm run bench` does.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { skipUnless } from '../helpers/capabilities.js';
import { makeTempDir, removeTempDirs, REPO_ROOT } from '../helpers/tools.js';

afterAll(removeTempDirs);

const dist = join(REPO_ROOT, 'dist', 'bench');
const why = existsSync(join(dist, 'harness.js')) ? undefined : 'dist/bench is not built (npm run build)';

interface Measurement { code: number; wallMs: number; cpuMs: number; maxRssKiB: number; stderrTail: string }
interface HarnessModule {
  measure(step: { cmd: string; args: string[]; stdin?: string; stdout?: string }): Promise<Measurement>;
  runCases(cases: unknown[], opts: { runs: number; warmup: number; log: (l: string) => void }): Promise<Array<Record<string, unknown>>>;
  toMarkdown(results: unknown[], opts: { runs: number; warmup: number; date: Date }): string;
}
const load = async (): Promise<HarnessModule> => (await import(join(dist, 'harness.js'))) as HarnessModule;

/** A node child that holds `mib` MiB of touched memory, then exits with `code`. */
const allocate = (mib: number, code = 0) => ({ cmd: process.execPath, args: ['-e', `const b = Buffer.alloc(${mib} << 20, 1); setTimeout(() => process.exit(${code} + (b[7] - 1)), 50)`] });

describe('bench harness', () => {
  it.skipIf(skipUnless(why))('reports the peak RSS of the command itself', async () => {
    const { measure } = await load();
    const small = await measure(allocate(1));
    const big = await measure(allocate(300));
    expect(small.code).toBe(0);
    expect(big.code).toBe(0);
    expect(big.maxRssKiB).toBeGreaterThan(300 * 1024);
    expect(big.maxRssKiB).toBeLessThan(small.maxRssKiB + 400 * 1024);
    expect(small.maxRssKiB).toBeLessThan(200 * 1024);
    expect(big.wallMs).toBeGreaterThan(50);
    expect(big.cpuMs).toBeGreaterThan(0);
  });

  it.skipIf(skipUnless(why))('redirects stdin/stdout to files and returns the exit code and stderr', async () => {
    const { measure } = await load();
    const dir = await makeTempDir();
    const m = await measure({ cmd: 'sh', args: ['-c', 'cat; echo oops >&2; exit 4'], stdin: join(REPO_ROOT, 'package.json'), stdout: join(dir, 'out') });
    expect(m.code).toBe(4);
    expect(m.stderrTail).toBe('oops');
    expect(await readFile(join(dir, 'out'), 'utf8')).toBe(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
  });

  it.skipIf(skipUnless(why))('alternates sides, skips with the reason, fails a case whose command fails', async () => {
    const { runCases, toMarkdown } = await load();
    const order: string[] = [];
    const side = (tool: string, mib: number) => ({ tool, prepare: async () => void order.push(tool), step: () => allocate(mib) });
    const results = await runCases(
      [
        { name: 'mem', description: '', tsbuild: side('t', 100), peer: side('p', 1) },
        { name: 'missing', description: '', tsbuild: { ...side('t', 1), needs: () => 'tsbuild frob is not available' }, peer: side('p', 1) },
        { name: 'broken', description: '', tsbuild: { tool: 't', step: () => allocate(1, 3) }, peer: side('p', 1) },
      ],
      { runs: 3, warmup: 1, log: () => {} },
    );
    expect(order.slice(0, 8)).toEqual(['t', 'p', 't', 'p', 'p', 't', 't', 'p']);
    expect(results[0]).toMatchObject({ name: 'mem', status: 'ok' });
    const mem = results[0] as { tsbuild: { peakRssKiB: number }; peer: { peakRssKiB: number }; ratio: number };
    expect(mem.tsbuild.peakRssKiB).toBeGreaterThan(mem.peer.peakRssKiB + 80 * 1024);
    expect(mem.ratio).toBeGreaterThan(0);
    expect(results[1]).toEqual({ name: 'missing', status: 'skipped', reason: 'tsbuild frob is not available' });
    expect(results[2]).toMatchObject({ name: 'broken', status: 'failed' });
    expect(String(results[2]!['reason'])).toMatch(/exited 3/);
    const md = toMarkdown(results, { runs: 3, warmup: 1, date: new Date(0) });
    expect(md).toMatch(/^\| mem \| t \| `node -e .*` \| \d+ ms \|/m);
    expect(md).toContain('- missing: skipped: tsbuild frob is not available');
    expect(md).toContain('- broken: failed:');
  });
});
