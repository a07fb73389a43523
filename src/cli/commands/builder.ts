import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Docker sizes for --keep-storage: bytes, or a number with k/m/g/t (binary units, optional b/ib). */
export function parseStorageSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw new UsageError('INVALID_ARGUMENT', `invalid --keep-storage ${JSON.stringify(v)}: expected bytes or a size like 512mb, 10gb`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/** `--filter until=DURATION` (Go durations: 24h, 90m, 1h30m); other filters are refused. */
async function untilMs(filters: readonly string[]): Promise<number | undefined> {
  let out: number | undefined;
  for (const f of filters) {
    const i = f.indexOf('=');
    const k = i < 0 ? f : f.slice(0, i);
    if (k !== 'until') throw new UsageError('INVALID_ARGUMENT', `invalid --filter ${JSON.stringify(f)}: only until=DURATION is supported`);
    const { parseGoDuration } = await import('../../../builder/dockerfile/parse-instructions.js');
    try {
      out = parseGoDuration(f.slice(i + 1)) / 1e6;
    } catch (e) {
      throw new UsageError('INVALID_ARGUMENT', `invalid --filter ${JSON.stringify(f)}: ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}

/** `tsbuild builder prune`: build cache eviction, like `docker builder prune`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.description('manage the build cache');
  cmd
    .command('prune')
    .description('remove build cache: step records, cache mounts, and the layer blobs only they kept')
    .option('-a, --all', 'also remove cache entries of layers that local images use, and the --debug-cache trail')
    .option('--keep-storage <size>', 'keep this much cache (e.g. 512mb, 10gb): remove least recently used entries only above it')
    .option('--filter <until=DURATION>', 'only remove entries not used for DURATION (e.g. until=24h) (repeatable)', collect)
    .option('-f, --force', 'do not prompt (tsbuild never prompts; accepted for docker compatibility)')
    .option('--dry-run', 'only report what would be removed')
    .option('--format <fmt>', 'output format: text or json', 'text')
    .action(async (o: { all?: boolean; keepStorage?: string; filter?: string[]; dryRun?: boolean; format: string }) => {
      const c = ctx();
      if (o.format !== 'text' && o.format !== 'json') throw new UsageError('INVALID_ARGUMENT', `invalid --format ${JSON.stringify(o.format)}: use text or json`);
      const keepBytes = o.keepStorage !== undefined ? parseStorageSize(o.keepStorage) : undefined;
      const until = await untilMs(o.filter ?? []);
      const [{ ImageStore }, { pruneBuildCache }, { humanSize }] = await Promise.all([
        import('../../oci/store/image-store.js'),
        import('../../../builder/solver/prune.js'),
        import('../../oci/store/describe.js'),
      ]);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const res = await pruneBuildCache(c.root, store, {
        ...(o.all ? { all: true } : {}),
        ...(keepBytes !== undefined ? { keepBytes } : {}),
        ...(until !== undefined ? { untilMs: until } : {}),
        ...(o.dryRun ? { dryRun: true } : {}),
      });
      if (o.format === 'json') {
        c.stdout.write(`${JSON.stringify({ deleted: res.removed.map((e) => ({ id: e.id, kind: e.kind, size: e.size, lastUsed: e.lastUsed.toISOString() })), reclaimedBytes: res.reclaimed, dryRun: !!o.dryRun })}\n`);
        return;
      }
      if (res.removed.length) c.stdout.write(`${o.dryRun ? 'Would delete' : 'Deleted'} build cache objects:\n${res.removed.map((e) => `${e.id}\n`).join('')}\n`);
      c.stdout.write(`Total reclaimed space: ${humanSize(res.reclaimed)}${o.dryRun ? ' (dry run)' : ''}\n`);
    });
}
