import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../exit.js';
import { parsePlatform } from '../../oci/platform.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { inspectImage, type ImageInspect } from '../../oci/store/describe.js';
import { formatErrorChain, TsbuildError, UsageError } from '../../util/errors.js';

/** docker inspect of a container by name or id (prefix); CONTAINER_NOT_FOUND when none. */
async function inspectContainerByName(root: string, name: string): Promise<Record<string, unknown>> {
  const { resolveContainer, containerInfo, recordPaths } = await import('../../../runtime/container/records.js');
  const { RuntimeError } = await import('../../../runtime/errors.js');
  const { inspectContainer } = await import('./container.js');
  const id = await resolveContainer(root, name);
  const i = await containerInfo(root, id);
  if (!i) throw new RuntimeError('CONTAINER_NOT_FOUND', `no such container: ${name}`);
  return inspectContainer(i, recordPaths(root, id).log);
}

/**
 * `tsbuild inspect [--type image|container] NAME... [--format json]`: docker-inspect-shaped JSON
 * of images (config, history, manifest); a name no image matches is looked up as a container
 * (docker's autodetection), unless --type says which.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd
    .argument('<name...>', 'image names or IDs (or container names or IDs)')
    .option('--format <fmt>', "output format: json, or a template like '{{.Id}}' / '{{json .Config}}' (field paths only)", 'json')
    .option('--platform <os/arch[/variant]>', 'which manifest of a multi-platform image')
    .option('--type <type>', 'only look for an image or a container (default: an image, else a container)')
    .action(async (images: string[], opts: { format: string; platform?: string; type?: string }) => {
      const c = ctx();
      if (opts.type !== undefined && opts.type !== 'image' && opts.type !== 'container') throw new UsageError('INVALID_ARGUMENT', `--type: want image or container, got ${opts.type}`);
      if (opts.format !== 'json' && !opts.format.includes('{{')) throw new UsageError('INVALID_ARGUMENT', `--format: want json or a {{.Field}} template, got ${opts.format}`);
      const store = await ImageStore.open(c.root, { logger: c.logger });
      const out: (ImageInspect | Record<string, unknown>)[] = [];
      let failed = false;
      for (const name of images) {
        try {
          if (opts.type === 'container') {
            out.push(await inspectContainerByName(c.root, name));
            continue;
          }
          let rec;
          try {
            rec = await store.resolve(name);
          } catch (e) {
            if (opts.type === 'image') throw e;
            // no such image: a container of that name or id, as docker inspect autodetects
            const ctr = await inspectContainerByName(c.root, name).catch(() => undefined);
            if (!ctr) throw new TsbuildError('NOT_FOUND', `no such object: ${name} (neither an image nor a container)`, { cause: e });
            out.push(ctr);
            continue;
          }
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
