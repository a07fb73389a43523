import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { build } from '../../../builder/build.js';
import { BuildContext } from '../../../builder/context/context.js';
import { StepTrail } from '../../../builder/solver/cache.js';
import { DirCacheMounts } from '../../../builder/solver/cache-mounts.js';
import { LastUsedBuildCache } from '../../../builder/solver/prune.js';
import { formatReference, parseReference } from '../../oci/reference.js';
import { ImageStore } from '../../oci/store/image-store.js';
import { hostPlatform, parsePlatform, type Platform } from '../../oci/platform.js';
import { UsageError } from '../../util/errors.js';
import { readAll } from '../../util/streams.js';
import type { CliContext } from '../context.js';
import { prepareSshAgents, PullingImageResolver, RuntimeExecutor, RuntimeSnapshotter } from '../wiring/build-runtime.js';
import { openBuildCache, parseCacheSpec } from '../wiring/build-cache.js';
import { parseOutput, writeOutput } from '../wiring/outputs.js';
import { dockerfileName, planPublish, publishFlags, type PublishFlags } from '../wiring/publish-flags.js';
import { progressRenderer, type ProgressMode } from '../wiring/progress.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface Flags extends PublishFlags {
  tag?: string[];
  file?: string;
  buildArg?: string[];
  target?: string;
  cache: boolean;
  progress: string;
  quiet?: boolean;
  iidfile?: string;
  network?: string;
  secret?: string[];
  output?: string;
  label?: string[];
  /** commander files `--no-cache-filter` under `cacheFilter` (a negatable name); true when absent. */
  cacheFilter?: string[] | boolean;
  cacheFrom?: string[];
  cacheTo?: string[];
  debugCache?: boolean;
  metadataFile?: string;
  compression?: string;
  platform?: string;
  pull?: boolean;
  ssh?: string[];
}

/** `--secret id=ID[,src=PATH|,env=VAR]` (docker buildx syntax; `source`/`type=file|env` accepted). */
export async function readSecrets(specs: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const spec of specs) {
    const kv = new Map<string, string>();
    for (const part of spec.split(',')) {
      const i = part.indexOf('=');
      if (i <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid --secret ${JSON.stringify(spec)}: expected id=ID,src=PATH or id=ID,env=VAR`);
      kv.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1));
    }
    const id = kv.get('id');
    if (!id) throw new UsageError('INVALID_ARGUMENT', `invalid --secret ${JSON.stringify(spec)}: id is required`);
    const src = kv.get('src') ?? kv.get('source');
    const type = kv.get('type') ?? (src ? 'file' : kv.has('env') ? 'env' : env[id] !== undefined ? 'env' : 'file');
    if (type === 'env') {
      const v = env[kv.get('env') ?? src ?? id];
      if (v === undefined) throw new UsageError('INVALID_ARGUMENT', `--secret ${id}: environment variable ${kv.get('env') ?? src ?? id} is not set`);
      out.set(id, Buffer.from(v));
    } else {
      const path = src ?? id;
      out.set(id, await readFile(path).catch((e: unknown) => {
        throw new UsageError('INVALID_ARGUMENT', `--secret ${id}: reading ${path}`, { cause: e });
      }));
    }
  }
  return out;
}

/** `--build-arg K=V` (or `K`, taking the value from this environment, like docker). */
export function parseBuildArgs(entries: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i === 0 || e === '') throw new UsageError('INVALID_ARGUMENT', `invalid --build-arg ${JSON.stringify(e)}: expected KEY=VALUE`);
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
    else if (env[e] !== undefined) out[e] = env[e]!;
  }
  return out;
}

/** SOURCE_DATE_EPOCH from `--build-arg SOURCE_DATE_EPOCH=` or the environment (buildkit reads the build-arg). */
export function sourceDateEpoch(buildArgs: Record<string, string>, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = buildArgs['SOURCE_DATE_EPOCH'] ?? env['SOURCE_DATE_EPOCH'];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError('INVALID_ARGUMENT', `invalid SOURCE_DATE_EPOCH ${JSON.stringify(v)}: expected seconds since the epoch`);
  return Number(v);
}

/** `--compression gzip|zstd[,level=N]`. */
export function parseCompression(s: string): { compression: 'gzip' | 'zstd'; level?: number } {
  const [c, ...rest] = s.split(',');
  if (c !== 'gzip' && c !== 'zstd') throw new UsageError('INVALID_ARGUMENT', `invalid --compression ${JSON.stringify(s)}: use gzip or zstd, optionally with ,level=N`);
  let level: number | undefined;
  for (const r of rest) {
    const m = /^level=(\d+)$/.exec(r.trim());
    if (!m) throw new UsageError('INVALID_ARGUMENT', `invalid --compression option ${JSON.stringify(r)}: only level=N is supported`);
    level = Number(m[1]);
    const max = c === 'gzip' ? 9 : 22;
    if (level < (c === 'gzip' ? 0 : 1) || level > max) throw new UsageError('INVALID_ARGUMENT', `invalid --compression level ${level} for ${c}`);
  }
  return level === undefined ? { compression: c } : { compression: c, level };
}

/** `tsbuild build [OPTIONS] CONTEXT`. */
export function register(cmd: Command, ctx: () => CliContext): void {
  publishFlags(cmd)
    .argument('<context>', 'build context directory, or - for a tar on stdin')
    .option('-t, --tag <name>', 'name the image (repeatable)', collect)
    .option('-f, --file <path>', 'the Dockerfile (default CONTEXT/Dockerfile)')
    .option('--build-arg <k=v>', 'set a build-time variable (repeatable)', collect)
    .option('--target <stage>', 'build this stage (default the last)')
    .option('--no-cache', 'run every step, ignoring the build cache')
    .option('--no-cache-filter <stages>', 'ignore the cache for the steps of these stages (comma-separated, repeatable)', (v: string, prev: unknown) => [...(Array.isArray(prev) ? (prev as string[]) : []), v])
    .option('--debug-cache', 'print why each step missed the cache')
    .option('--cache-from <spec>', 'import build cache: type=registry,ref=REF (or just REF); a missing cache is a warning (repeatable)', collect)
    .option('--cache-to <spec>', 'export build cache: type=registry,ref=REF[,mode=min|max][,ignore-error=true] (repeatable)', collect)
    .option('--progress <mode>', 'progress output: auto, plain, tty, quiet or rawjson (BuildKit SolveStatus JSON lines)', 'auto')
    .option('-q, --quiet', 'print only the image id')
    .option('--iidfile <file>', 'write the image id to this file')
    .option('--network <mode>', 'network of RUN steps: default (host), host or none', 'default')
    .option('-o, --output <spec>', 'output: type=image (default), type=oci|docker,dest=FILE (- for stdout; oci with tar=false: a layout dir), type=local,dest=DIR, type=tar,dest=FILE, type=registry[,name=REF] (push; also type=image,push=true)')
    .option('--compression <spec>', 'layer compression of new layers: gzip (default) or zstd, optionally ,level=N')
    .option('--label <k=v>', 'set a label on the image (repeatable)', collect)
    .option('--metadata-file <file>', 'write the build result (digests, names) as JSON to this file')
    .option('--pull', 'always re-resolve base image tags against their registry (pulls a changed image; default: pull only what the store lacks)')
    .option('--platform <os/arch[/variant]>', 'target platform (default the host\'s); RUN steps of another architecture need a binfmt_misc emulator')
    .option('--ssh <spec>', 'ssh agent for RUN --mount=type=ssh: default or ID, =SOCKET or =KEY[,KEY] (default: $SSH_AUTH_SOCK) (repeatable)', collect)
    .option('--secret <spec>', 'secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR (repeatable)', collect)
    .action(async (contextArg: string, f: Flags) => {
      const c = ctx();
      let mode: ProgressMode;
      if (f.quiet || f.progress === 'quiet') mode = 'quiet';
      else if (f.progress === 'plain') mode = 'plain';
      else if (f.progress === 'tty') mode = 'tty';
      else if (f.progress === 'rawjson') mode = 'rawjson';
      else if (f.progress === 'auto') mode = c.stderr.isTTY ? 'tty' : 'plain';
      else throw new UsageError('INVALID_ARGUMENT', `invalid --progress ${JSON.stringify(f.progress)}: use auto, plain, tty, quiet or rawjson`);
      const network = f.network === 'none' ? 'none' : f.network === 'host' || f.network === 'default' ? 'host' : undefined;
      if (!network) throw new UsageError('INVALID_ARGUMENT', `invalid --network ${JSON.stringify(f.network)}: use default, host or none`);
      const buildArgs = parseBuildArgs(f.buildArg ?? []);
      const epoch = sourceDateEpoch(buildArgs);
      const secrets = await readSecrets(f.secret ?? []);
      const startedOn = new Date();
      const compression = f.compression ? parseCompression(f.compression) : undefined;
      const labels: Record<string, string> = {};
      for (const l of f.label ?? []) {
        const i = l.indexOf('=');
        if (i <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid --label ${JSON.stringify(l)}: expected KEY=VALUE`);
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      let platform: Platform = hostPlatform();
      if (f.platform) {
        try {
          platform = parsePlatform(f.platform.trim());
        } catch (e) {
          throw new UsageError('INVALID_ARGUMENT', `invalid --platform ${JSON.stringify(f.platform)}: want os/arch[/variant]`, { cause: e });
        }
        if (f.platform.includes(',')) throw new UsageError('NOT_SUPPORTED', `--platform ${f.platform}: multi-platform builds are not supported; build one platform at a time`);
      }
      // tags are checked before anything runs
      const names = (f.tag ?? []).map((t) => {
        let r;
        try {
          r = parseReference(t);
        } catch (e) {
          throw new UsageError('INVALID_ARGUMENT', `invalid tag ${JSON.stringify(t)}`, { cause: e });
        }
        if (r.digest) throw new UsageError('INVALID_ARGUMENT', `invalid tag ${JSON.stringify(t)}: a digest reference cannot be a tag`);
        return formatReference(r);
      });
      const cacheSpecs = { from: (f.cacheFrom ?? []).map((s) => parseCacheSpec(s, '--cache-from')), to: (f.cacheTo ?? []).map((s) => parseCacheSpec(s, '--cache-to')) };
      const publishing = planPublish(f, names, f.output);
      const output = publishing.output ? parseOutput(publishing.output) : undefined;
      // the key is read (and its password asked for) before the build runs
      const publisher = publishing.plan ? await (await import('../wiring/publish.js')).Publisher.prepare(c, publishing.plan) : undefined;
      if (output && output.dest === '-' && f.quiet) throw new UsageError('INVALID_ARGUMENT', '-q cannot be combined with an --output to stdout');

      const fromStdin = contextArg === '-';
      const dfFromStdin = f.file === '-';
      if (fromStdin && dfFromStdin) throw new UsageError('INVALID_ARGUMENT', 'the context and the Dockerfile cannot both come from stdin');
      const dfStdinText = dfFromStdin ? (await readAll(process.stdin)).toString('utf8') : undefined;
      const dfPath = dfFromStdin ? undefined : f.file ? resolve(f.file) : fromStdin ? undefined : join(resolve(contextArg), 'Dockerfile');
      const context = fromStdin
        ? await BuildContext.fromTar(process.stdin, f.file ? { dockerfile: f.file } : {})
        : await BuildContext.fromDirectory(resolve(contextArg), { ...(dfPath ? { dockerfile: dfPath } : {}), hashCacheDir: join(c.root, 'buildcache', 'context-hashes') });
      try {
        const dfText = dfStdinText !== undefined ? dfStdinText : dfPath ? await readFile(dfPath, 'utf8').catch((e: unknown) => {
          throw new UsageError('INVALID_ARGUMENT', `reading Dockerfile ${dfPath}`, { cause: e });
        }) : await readFile(join(context.root, 'Dockerfile'), 'utf8');
        const store = await ImageStore.open(c.root, { logger: c.logger });
        const lease = await store.lease();
        const progress = progressRenderer(mode, c.stderr);
        const ac = new AbortController();
        const onSig = () => ac.abort(new Error('interrupted'));
        process.once('SIGINT', onSig);
        process.once('SIGTERM', onSig);
        let caches: Awaited<ReturnType<typeof openBuildCache>> | undefined;
        let ssh: Awaited<ReturnType<typeof prepareSshAgents>> | undefined;
        try {
          if (f.ssh?.length) ssh = await prepareSshAgents(f.ssh);
          caches = await openBuildCache(c, store.content, new LastUsedBuildCache(c.root, store.content), { ...cacheSpecs, progress, signal: ac.signal, connection: f });
          const resolver = new PullingImageResolver(store, { ...(f.pull ? { always: true } : {}), remote: async (r) => (await import('./pull.js')).remoteOptions(c, [r], f), partialDir: join(c.root, 'tmp', 'partial'), progress });
          const res = await build({
            dockerfile: dfText,
            file: f.file && !dfFromStdin ? f.file : 'Dockerfile',
            context,
            buildArgs,
            ...(f.target ? { target: f.target } : {}),
            platform,
            resolver: publisher ? publisher.record(resolver) : resolver,
            snapshotter: new RuntimeSnapshotter(c.root, c.logger),
            executor: new RuntimeExecutor(c.root, c.logger),
            content: store.content,
            cache: caches.cache,
            cacheMounts: new DirCacheMounts(c.root),
            secrets,
            ...(ssh ? { ssh: ssh.agents } : {}),
            noCache: !f.cache,
            ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
            defaultNetwork: network,
            labels,
            ...(compression ? { compression: compression.compression, ...(compression.level !== undefined ? { compressionLevel: compression.level } : {}) } : {}),
            trail: new StepTrail(c.root),
            ...(f.debugCache ? { debugCache: true } : {}),
            ...(Array.isArray(f.cacheFilter) ? { noCacheStages: new Set(f.cacheFilter.flatMap((x) => x.split(',')).map((x) => x.trim().toLowerCase()).filter(Boolean)) } : {}),
            progress,
            signal: ac.signal,
          });
          const desc = await store.putImage(res.image);
          const manifest = await res.image.manifest();
          const id = manifest.config.digest;
          if (output && output.type !== 'image') {
            await writeOutput(output, res.image, desc, store, names, c.stdout);
            progress.finish(`exporting to ${output.type} ${output.dest === '-' ? 'stdout' : output.dest} done`);
          } else {
            for (const t of f.tag ?? []) await store.tag(t, desc);
            progress.finish(`writing image ${id} done`);
            for (const n of names) progress.finish(`naming to ${n} done`);
          }
          await caches.export();
          if (f.iidfile) await writeFile(f.iidfile, id);
          if (f.metadataFile) {
            const meta = {
              'containerimage.digest': desc.digest,
              'containerimage.config.digest': id,
              'containerimage.descriptor': desc,
              ...(names.length ? { 'image.name': names.join(',') } : {}),
            };
            await writeFile(f.metadataFile, JSON.stringify(meta, null, 2) + '\n');
          }
          if (publisher) {
            progress.close();
            const facts = { dockerfile: dfText, dockerfilePath: dockerfileName(contextArg, f.file), buildArgs, labels, secretIds: [...secrets.keys()], platform, startedOn, ...(f.target ? { target: f.target } : {}) };
            const internal = { network, noCache: !f.cache, ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}), ...(compression ? { compression } : {}) };
            c.stdout.write(`${await publisher.publish(store, desc, res.image, { ...facts, internal }, !!f.quiet)}\n`);
          } else if (f.quiet) c.stdout.write(`${id}\n`);
        } finally {
          await caches?.close();
          await ssh?.close();
          progress.close();
          process.removeListener('SIGINT', onSig);
          process.removeListener('SIGTERM', onSig);
          await lease.release();
        }
      } finally {
        await context.close();
      }
    });
}
