import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { parsePlatform } from '../../oci/platform.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { inspectImage, type ImageInspect } from '../../oci/store/describe.js';
import { formatErrorChain, UsageError } from '../../util/errors.js';

/** `tsbuild inspect IMAGE... [--format json]`: docker-inspect-shaped JSON (config, history, manifest). */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<image...>', 'image names or IDs')
    .option('--format <fmt>', "output format: json, or a template like '{{.Id}}' / '{{json .Config}}' (field paths only)", 'json')
    .option('--platform <os/arch[/variant]>', 'which manifest of a multi-platform image')
    .action(async (images: string[], opts: { format: string; platform?: string }) => {
      const c = ctx();
      if (opts.format !== 'json' && !opts.format.includes('{{')) throw new UsageError('INVALID_ARGUMENT', `--format: want json or a {{.Field}} template, got ${opts.format}`);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const out: ImageInspect[] = [];
      let failed = false;
      for (const name of images) {
        try {
          const rec = await store.resolve(name);
          out.push(await inspectImage(store, rec, opts.platform ? parsePlatform(opts.platform) : undefined));
        } catch (e) {
          failed = true;
          c.stderr.write(`tsbuild: ${formatErrorChain(e)}\n`);
        }
      }
      if (opts.format === 'json') c.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      else for (const o of out) c.stdout.write(`${renderTemplate(opts.format, o)}\n`);
      if (failed) throw new ExitStatus(1);
    });
}

/** Expands `{{.A.B}}` and `{{json .A}}` (the subset of Go templates `docker inspect -f` users need most). */
function renderTemplate(tpl: string, v: unknown): string {
  return tpl.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, json: string | undefined, path: string) => {
    let cur: unknown = v;
    for (const k of path.split('.').filter(Boolean)) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(cur ?? null);
    if (cur === undefined || cur === null) return '<no value>';
    return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
  });
}
