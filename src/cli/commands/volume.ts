import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { humanSize } from '../../oci/store/describe.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `--label k=v` (or `k`) into a map, as docker volume create. */
function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    const k = i < 0 ? l : l.slice(0, i);
    if (!k) throw new UsageError('INVALID_ARGUMENT', `invalid label ${JSON.stringify(l)}: expected key=value`);
    out[k] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/** Reads one line from stdin (prune's confirmation). */
async function confirm(c: CliContext, question: string): Promise<boolean> {
  c.stderr.write(`${question} [y/N] `);
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString('utf8');
      if (buf.includes('\n')) done();
    };
    const done = () => {
      process.stdin.off('data', onData).off('end', done);
      process.stdin.pause();
      resolve(buf);
    };
    process.stdin.on('data', onData).on('end', done);
  });
  return /^\s*y(es)?\s*$/i.test(line.split('\n')[0] ?? '');
}

/** `tsbuild volume create|ls|inspect|rm|prune`: docker's local volumes under `<root>/volumes/`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.description('manage volumes (<root>/volumes/<name>/_data, docker\'s local driver layout)');
  cmd
    .command('create')
    .argument('[name]', 'volume name (default: a random 64-hex name)')
    .option('--label <k=v>', 'set a label (repeatable)', collect)
    .option('-d, --driver <driver>', 'volume driver (only local)', 'local')
    .description('create a volume (an existing one is returned as it is)')
    .action(async (name: string | undefined, o: { label?: string[]; driver: string }) => {
      if (o.driver !== 'local') throw new UsageError('NOT_SUPPORTED', `volume driver ${JSON.stringify(o.driver)} is not supported: only local`);
      const { createVolume } = await import('../../../runtime/volumes/store.js');
      const v = await createVolume(ctx().root, name, parseLabels(o.label ?? []));
      ctx().stdout.write(`${v.Name}\n`);
    });
  cmd
    .command('ls')
    .alias('list')
    .option('-q, --quiet', 'only names')
    .option('--format <fmt>', 'table or json (one object per line)', 'table')
    .option('-f, --filter <filter>', 'dangling=true|false, label=k[=v], name=substring (repeatable)', collect)
    .description('list volumes')
    .action(async (o: { quiet?: boolean; format: string; filter?: string[] }) => {
      const c = ctx();
      if (o.format !== 'table' && o.format !== 'json') throw new UsageError('INVALID_ARGUMENT', `--format: want table or json, got ${o.format}`);
      const { listVolumes, volumeUsers } = await import('../../../runtime/volumes/store.js');
      let list = await listVolumes(c.root);
      const filters = o.filter ?? [];
      const users = filters.some((f) => f.startsWith('dangling=')) ? await volumeUsers(c.root) : undefined;
      for (const f of filters) {
        const i = f.indexOf('=');
        const [k, v] = i < 0 ? [f, ''] : [f.slice(0, i), f.slice(i + 1)];
        if (k === 'dangling' && (v === 'true' || v === 'false' || v === '1' || v === '0')) {
          const dangling = v === 'true' || v === '1';
          list = list.filter((x) => !(users!.get(x.Name) ?? []).length === dangling);
        } else if (k === 'label' && v) {
          const j = v.indexOf('=');
          list = list.filter((x) => (j < 0 ? v in x.Labels : x.Labels[v.slice(0, j)] === v.slice(j + 1)));
        } else if (k === 'name' && v) list = list.filter((x) => x.Name.includes(v));
        else throw new UsageError('INVALID_ARGUMENT', `invalid filter ${JSON.stringify(f)}: dangling=true|false, label=k[=v] or name=…`);
      }
      if (o.quiet) {
        for (const v of list) c.stdout.write(`${v.Name}\n`);
        return;
      }
      if (o.format === 'json') {
        for (const v of list) c.stdout.write(`${JSON.stringify(v)}\n`);
        return;
      }
      c.stdout.write(`${'DRIVER'.padEnd(10)}VOLUME NAME\n`);
      for (const v of list) c.stdout.write(`${v.Driver.padEnd(10)}${v.Name}\n`);
    });
  cmd
    .command('inspect')
    .argument('<names...>', 'volume names')
    .description('print volume records as a JSON array')
    .action(async (names: string[]) => {
      const { inspectVolume } = await import('../../../runtime/volumes/store.js');
      const out = [];
      for (const n of names) out.push(await inspectVolume(ctx().root, n));
      ctx().stdout.write(`${JSON.stringify(out, null, 4)}\n`);
    });
  cmd
    .command('rm')
    .alias('remove')
    .argument('<names...>', 'volume names')
    .option('-f, --force', 'ignore missing volumes; remove volumes used only by stopped containers')
    .description('remove volumes and their data (not while a container uses them)')
    .action(async (names: string[], o: { force?: boolean }) => {
      const c = ctx();
      const { removeVolume, volumeUsers } = await import('../../../runtime/volumes/store.js');
      const users = await volumeUsers(c.root);
      let failed: unknown;
      for (const n of names) {
        try {
          await removeVolume(c.root, n, { force: !!o.force, users });
          c.stdout.write(`${n}\n`);
        } catch (e) {
          // like docker: go on with the others, fail at the end
          if (failed) c.stderr.write(`tsbuild: ${(failed as Error).message}\n`);
          failed = e;
        }
      }
      if (failed) throw failed;
    });
  cmd
    .command('prune')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('-a, --all', 'remove every unused volume, not only anonymous ones')
    .option('--filter <label=k[=v]>', 'only volumes with this label (repeatable)', collect)
    .description('remove unused anonymous volumes (all unused volumes with -a)')
    .action(async (o: { force?: boolean; all?: boolean; filter?: string[] }) => {
      const c = ctx();
      const labels = (o.filter ?? []).map((f) => {
        if (!f.startsWith('label=') || f.length === 6) throw new UsageError('INVALID_ARGUMENT', `invalid filter ${JSON.stringify(f)}: label=k[=v]`);
        return f.slice(6);
      });
      if (!o.force) {
        const what = o.all ? 'all local volumes not used by at least one container' : 'anonymous local volumes not used by at least one container';
        if (!(await confirm(c, `WARNING! This will remove ${what}.\nAre you sure you want to continue?`))) return;
      }
      const { pruneVolumes } = await import('../../../runtime/volumes/store.js');
      const r = await pruneVolumes(c.root, { all: !!o.all, filterLabels: labels });
      if (r.removed.length) c.stdout.write(`Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n`);
      c.stdout.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    });
}
