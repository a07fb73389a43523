/**
 * `npm run bench -- [--runs N] [--warmup N] [--list] [case-or-prefix...]`: runs the benchmark cases
 * (bench/cases.ts) against their peers, prints a markdown table and appends it to
 * bench/results/<YYYY-MM-DD>.md. Exit status 1 if a case failed (skipped cases are not failures).
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CASES } from './cases.js';
import { REPO_ROOT, runCases, toMarkdown } from './harness.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { runs: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, list: { type: 'boolean', default: false } },
  });
  if (values.list) {
    for (const c of CASES) process.stdout.write(`${c.name}\t${c.description}\n`);
    return;
  }
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(warmup) || warmup < 0) throw new Error('--runs must be >= 1 and --warmup >= 0');
  const chosen = positionals.length ? CASES.filter((c) => positionals.some((p) => c.name === p || c.name.startsWith(p))) : CASES;
  if (!chosen.length) throw new Error(`no case matches ${positionals.join(', ')} (see --list)`);

  const date = new Date();
  const results = await runCases(chosen, { runs, warmup, log: (l) => process.stderr.write(`bench: ${l}\n`) });
  const md = toMarkdown(results, { runs, warmup, date });
  process.stdout.write(`\n${md}`);
  const dir = join(REPO_ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${date.toISOString().slice(0, 10)}.md`);
  await appendFile(file, `${md}\n`);
  process.stderr.write(`bench: appended to ${file}\n`);
  if (results.some((r) => r.status === 'failed')) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
