/**
 * The solver: runs the resolved stages of a build. Each stage's steps run in order on top of
 * its base; each step with a filesystem effect (RUN, COPY/ADD, WORKDIR) gets a content-keyed
 * cache key (graph/op.ts) and is looked up in the cache before it runs. Independent stages run
 * concurrently; steps that execute are bounded by a parallelism limit. Only the stages the
 * target needs are built (the front end resolves only those).
 */
import { availableParallelism } from 'node:os';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import { sha256, type Digest } from '../../src/oci/digest.js';
import type { History, ImageConfig } from '../../src/oci/config.js';
import type { Image, Layer } from '../../src/oci/image.js';
import { emptyImage } from '../../src/oci/empty.js';
import { appendLayers, withConfig, withFlavour } from '../../src/oci/mutate.js';
import { layerFromCore } from '../../src/oci/partial.js';
import type { Compression } from '../../src/oci/tar/index.js';
import { formatPlatform, hostPlatform, platformMatches } from '../../src/oci/platform.js';
import { TsbuildError } from '../../src/util/errors.js';
import type { BuildContext } from '../context/context.js';
import type { CopyStep, ResolvedBuild, ResolvedStage, RunStep, Step } from '../convert/resolve.js';
import type { StageGraph } from '../convert/stages.js';
import { DockerfileError } from '../dockerfile/errors.js';
import { commitUpper, type CommittedLayer } from '../exec/commit.js';
import { applyCopy, applyWorkdir, rootSourcesDigest, type CopyInput, type FetchedSource } from '../exec/copy.js';
import { forwardAgent } from '../exec/ssh-forward.js';
import { contextView } from '../exec/context-view.js';
import { checkoutGit, downloadUrl, isHttpSource, parseChecksum, parseGitSource, resolveGitCommit } from '../exec/remote-source.js';
import { resolveInRoot } from '../exec/root-path.js';
import { BuildError } from '../exec/errors.js';
import type { ActiveSnapshot, ExecMount, Executor, ImageResolver, Snapshotter } from '../exec/types.js';
import type { ResolvedMount } from '../convert/resolve.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { cacheKey, platformString, type Op } from '../graph/op.js';
import { explainMiss, type BuildCache, type CacheRecord, type StepTrail } from './cache.js';
import type { CacheMounts, CacheMountLease } from './cache-mounts.js';
import type { ProgressSink } from './progress.js';

/** Everything the solver needs. */
export interface SolveOptions {
  readonly graph: StageGraph;
  readonly build: ResolvedBuild;
  /** External base images, by ref as written (already resolved by the caller). */
  readonly images: ReadonlyMap<string, Image>;
  readonly context: BuildContext;
  readonly resolver: ImageResolver;
  readonly snapshotter: Snapshotter;
  readonly executor: Executor;
  readonly content: ContentStore;
  readonly cache?: BuildCache;
  readonly noCache?: boolean;
  /** Seconds since the epoch: config/history `created` and new layer mtimes are clamped to it. */
  readonly sourceDateEpoch?: number;
  /** Network of `RUN --network=default`: host unless `none` is asked for. */
  readonly defaultNetwork?: 'host' | 'none';
  readonly compression?: Compression;
  readonly compressionLevel?: number;
  /** Steps executing at once (default: the number of CPUs). */
  readonly parallelism?: number;
  readonly progress?: ProgressSink;
  readonly signal?: AbortSignal;
  /** Lines of output kept for a failing RUN's error. */
  readonly tailLines?: number;
  /** Directories of `RUN --mount=type=cache` (without it, cache mounts are empty directories per RUN). */
  readonly cacheMounts?: CacheMounts;
  /** `--secret` values by id, for `RUN --mount=type=secret`; kept in memory only. */
  readonly secrets?: ReadonlyMap<string, Buffer>;
  /** `--ssh` agents by id (`default` …): host paths of ssh-agent sockets, forwarded into `RUN --mount=type=ssh`. */
  readonly ssh?: ReadonlyMap<string, string>;
  /** Stage names (as in `AS name`, lower case) whose steps ignore the cache (`--no-cache-filter`). */
  readonly noCacheStages?: ReadonlySet<string>;
  /** Per-position record of step keys; with `debugCache`, misses are explained through progress. */
  readonly trail?: StepTrail;
  readonly debugCache?: boolean;
  /** Clock for `created` when no SOURCE_DATE_EPOCH is given (tests). */
  readonly now?: () => Date;
}

/** A built stage. */
export interface StageResult {
  readonly image: Image;
  /** Cache key of the stage's final filesystem. */
  readonly key: Digest;
}

/** A counting semaphore. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await f();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A layer in the content store; `fetch` (a remote cache record's) makes the blob present first. */
function storedLayer(content: ContentStore, c: CommittedLayer, fetch?: () => Promise<void>): Layer {
  const d = c.descriptor;
  const compressed = async () => {
    await fetch?.();
    return content.open(d);
  };
  return layerFromCore({ digest: async () => d.digest, size: async () => d.size, mediaType: async () => d.mediaType, compressed, descriptor: async () => d }, c.diffId);
}

/** The op of a filesystem step (its semantic content only). */
function stepOp(step: RunStep | CopyStep | Extract<Step, { kind: 'WORKDIR' }>, from: string, network: string): Op {
  switch (step.kind) {
    case 'RUN':
      return { kind: 'exec', args: step.args, env: [...step.env, ...step.proxyEnv], cwd: step.cwd, user: step.user, network, inlineFiles: step.inlineFiles };
    case 'WORKDIR':
      return { kind: 'mkdir', path: step.path, user: step.user };
    default:
      return {
        kind: 'copy',
        instruction: step.kind,
        sources: step.sources,
        contents: step.contents,
        dest: step.dest,
        chown: step.chown,
        chmod: step.chmod,
        excludes: step.excludes,
        unpack: step.kind === 'ADD' && step.unpack !== false,
        from,
      };
  }
}

/** Runs the build; resolves with every built stage (the target's is `results.get(build.target.index)`). */
export async function solve(o: SolveOptions): Promise<Map<number, StageResult>> {
  const limiter = new Limiter(Math.max(1, o.parallelism ?? availableParallelism()));
  const stages = new Map<number, Promise<StageResult>>();
  const now = o.now ?? (() => new Date());
  const epochDate = o.sourceDateEpoch !== undefined ? rfc3339(new Date(o.sourceDateEpoch * 1000)) : undefined;
  const multi = o.build.stages.size > 1;
  const abort = new AbortController();
  const onAbort = () => abort.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const signal = abort.signal;

  // the target and the stages it is built FROM end up in the image
  const exported = new Set<number>();
  for (let i: number | undefined = o.build.target.index; i !== undefined; ) {
    exported.add(i);
    const b: ResolvedStage['base'] | undefined = o.build.stages.get(i)?.base;
    i = b?.kind === 'stage' ? b.index : undefined;
  }

  const stageResult = (index: number): Promise<StageResult> => {
    let p = stages.get(index);
    if (!p) {
      const rs = o.build.stages.get(index);
      if (!rs) throw new BuildError('STEP_FAILED', `stage ${index} was not resolved`);
      p = buildStage(rs);
      // a failure of any stage stops the others
      p.catch(() => abort.abort());
      stages.set(index, p);
    }
    return p;
  };

  const imageInput = async (ref: string): Promise<Image> => {
    const img = o.images.get(ref);
    if (img) return img;
    try {
      return await o.resolver.resolve(ref, o.graph.options.targetPlatform, signal);
    } catch (e) {
      throw new BuildError('BASE_NOT_FOUND', `image ${ref} not found`, { cause: e });
    }
  };

  async function buildStage(rs: ResolvedStage): Promise<StageResult> {
    // === base
    let base: Image;
    let key: Digest;
    if (rs.base.kind === 'scratch') {
      base = emptyImage(rs.platform);
      key = cacheKey(undefined, { kind: 'scratch', platform: platformString(rs.platform) });
    } else if (rs.base.kind === 'image') {
      base = await imageInput(rs.base.ref);
      key = cacheKey(undefined, { kind: 'image', digest: await base.digest() });
      const bc = await base.config();
      const got = { os: bc.os, architecture: bc.architecture, ...(bc.variant ? { variant: bc.variant } : {}) };
      if (!platformMatches(rs.platform, got)) {
        // BuildKit's InvalidBaseImagePlatform check: the base is used anyway
        o.progress?.({ kind: 'warning', message: `InvalidBaseImagePlatform: Base image ${rs.base.ref} was pulled with platform "${formatPlatform(got)}", expected "${formatPlatform(rs.platform)}" for current build` });
      }
    } else {
      const parent = await stageResult(rs.base.index);
      base = parent.image;
      key = parent.key;
    }
    const baseConfig = await base.config();
    const total = rs.steps.length + 1;
    const prefix = (n: number) => `[${multi ? rs.displayName + ' ' : ''}${n}/${total}]`;
    const fromName = `${prefix(1)} FROM ${rs.base.kind === 'scratch' ? 'scratch' : rs.base.kind === 'image' ? rs.base.ref : o.build.stages.get(rs.base.index)?.displayName ?? ''}`;
    o.progress?.({ kind: 'step', id: `${rs.index}:0`, name: fromName, state: 'done', ms: 0 });

    const added: { layer: Layer; history: History }[] = [];
    const history: History[] = [...(baseConfig.history ?? [])];
    let lastCreated = epochDate ?? baseConfig.created;
    let current = base;
    let parentMissed = false;
    /** The content chain after a COPY --from=stage that missed by the stage key (see below). */
    let altKey: Digest | undefined;

    for (let i = 0; i < rs.steps.length; i++) {
      const step = rs.steps[i]!;
      const name = `${prefix(i + 2)} ${step.original.replace(/\s+/g, ' ').trim()}`;
      const id = `${rs.index}:${i + 1}`;
      const hist = (created: string | undefined, empty: boolean): History => ({
        ...(created ? { created } : {}),
        created_by: step.history.createdBy,
        comment: step.history.comment,
        ...(empty ? { empty_layer: true } : {}),
      });
      if (step.kind === 'CONFIG') {
        history.push(hist(lastCreated, true));
        continue;
      }
      // === cache key
      let input: CopyInput | undefined;
      const inputs: Digest[] = [];
      let from = 'context';
      let network = 'host';
      if (step.kind === 'RUN') network = step.network === 'default' ? o.defaultNetwork ?? 'host' : step.network;
      let fetchRemote: (() => Promise<FetchedSource[]>) | undefined;
      if (step.kind === 'COPY' || step.kind === 'ADD') {
        if (step.from.kind === 'context') {
          let sources = step.sources;
          if (step.kind === 'ADD') {
            const r = await remoteSources(step, name);
            sources = r.local;
            inputs.push(...r.inputs);
            fetchRemote = r.fetch;
          }
          if (sources.length > 0) {
            let selected;
            try {
              selected = await o.context.select(sources, { excludes: step.excludes });
            } catch (e) {
              const detail = e instanceof DockerfileError ? e.detail : (e as Error).message;
              throw new BuildError('COPY_FAILED', `${name}: failed to compute cache key: ${detail} (is it excluded by .dockerignore?)`, { cause: e, location: step.location, step: name });
            }
            inputs.push(await o.context.hash(selected));
            input = { kind: 'context', context: o.context, selected };
          } else input = { kind: 'context', context: o.context, selected: [] };
        } else if (step.from.kind === 'stage') {
          const r = await stageResult(step.from.index);
          from = r.key;
          inputs.push(r.key);
        } else {
          const img = await imageInput(step.from.ref);
          from = await img.digest();
          inputs.push(from as Digest);
        }
      }
      let mountOps: Record<string, string | number | boolean>[] = [];
      if (step.kind === 'RUN' && step.mounts.length > 0) {
        const r = await mountInputs(step, name);
        mountOps = r.ops;
        inputs.push(...r.inputs);
      }
      const op0 = stepOp(step, from, network);
      const op: Op = op0.kind === 'exec' && mountOps.length ? { ...op0, mounts: mountOps } : op0;
      const parentKey = key;
      key = cacheKey(key, op, inputs);

      const skip = o.noCache || (o.noCacheStages?.has(rs.name) ?? false) || (o.noCacheStages?.has(rs.displayName) ?? false);
      // Layers of another compression are other blobs: they get their own records (the key chain
      // stays content-based). Stages that only feed COPY --from or mounts never reach the image:
      // their layers are stored uncompressed (no gzip on the way in or out), and they may reuse
      // a compressed record.
      const compression: Compression = exported.has(rs.index) ? o.compression ?? 'gzip' : 'none';
      const recordKeyOf = (c: Compression) => (c === 'gzip' ? key : sha256(`${key}\n${c}`));
      const recordKey = recordKeyOf(compression);
      let rec: CacheRecord | undefined = skip || !o.cache ? undefined : await o.cache.get(recordKey);
      if (!rec && !skip && o.cache && compression === 'none') rec = await o.cache.get(recordKeyOf(o.compression ?? 'gzip'));
      // COPY --from=stage missed by the stage's key: look up the key of the content it copies
      // (BuildKit's content keys), so a change elsewhere in that stage does not copy unchanged
      // files again. The steps after it also follow a second chain from that content key
      // (altKey: looked up when the stage chain misses, results recorded under both; only the
      // stage chain is exported or returned), so they stay cached too. A hit is recorded under
      // the stage key as well.
      const parentAlt = altKey;
      altKey = parentAlt ? cacheKey(parentAlt, op, inputs) : undefined;
      let contentRecordKey: Digest | undefined;
      if (!rec && !skip && o.cache && (step.kind === 'COPY' || step.kind === 'ADD') && step.from.kind === 'stage') {
        // (a source that cannot be read fails in the copy itself, with the step's name)
        const digest = await stageSourcesDigest((await stageResult(step.from.index)).image, step.sources).catch(() => undefined);
        if (digest) altKey = cacheKey(parentAlt ?? parentKey, { ...op, from: 'stage-content' } as Op, [digest]);
      }
      if (!rec && !skip && o.cache && altKey) {
        contentRecordKey = compression === 'gzip' ? altKey : sha256(`${altKey}\n${compression}`);
        rec = await o.cache.get(contentRecordKey);
        if (rec) await o.cache.put(recordKey, rec);
      }
      if (o.trail) {
        const identity = `${o.graph.options.file ?? 'Dockerfile'}\n${rs.displayName}\n${i}`;
        const now = { key, parent: parentKey, op, inputs };
        const before = await o.trail.last(identity);
        if (!rec && o.debugCache) o.progress?.({ kind: 'cache-miss', id, name, reason: skip ? 'cache disabled for this step (--no-cache or --no-cache-filter)' : explainMiss(before, now, parentMissed) });
        await o.trail.record(identity, now, before).catch(() => undefined);
      }
      if (!rec) parentMissed = true;
      if (rec) {
        o.progress?.({ kind: 'step', id, name, state: 'cached' });
      } else {
        o.progress?.({ kind: 'step', id, name, state: 'start' });
        const t0 = Date.now();
        let layer: CommittedLayer | undefined;
        try {
          layer = await limiter.run(() => execute(step, current, input, network, name, id, compression, fetchRemote));
        } catch (e) {
          o.progress?.({ kind: 'step', id, name, state: 'error', error: (e as Error).message });
          throw e;
        }
        rec = { ...(layer ? { layer } : {}), created: epochDate ?? rfc3339(now()) };
        if (o.cache) await o.cache.put(recordKey, rec);
        if (o.cache && contentRecordKey) await o.cache.put(contentRecordKey, rec);
        o.progress?.({ kind: 'step', id, name, state: 'done', ms: Date.now() - t0 });
      }
      o.cache?.used?.({ key: recordKey, parent: parentKey, record: rec, stage: rs.index, inImage: exported.has(rs.index) });
      lastCreated = epochDate ?? rec.created;
      if (rec.layer) {
        const fetch = rec.fetch;
        const layer = storedLayer(o.content, rec.layer, fetch && (() => fetch(signal)));
        const h = hist(lastCreated, false);
        added.push({ layer, history: h });
        history.push(h);
        current = appendLayers(current, { layer, history: h });
      } else {
        history.push(hist(lastCreated, true));
      }
    }

    // === the stage's image: base layers + new layers, the front end's config, all history
    const withLayers = appendLayers(base, ...added);
    const cfg = await withLayers.config();
    const config: ImageConfig = {
      ...cfg,
      ...(lastCreated ? { created: lastCreated } : {}),
      config: rs.config,
      history,
    };
    if (!platformMatches(rs.platform, { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) })) {
      // a base of another platform (warned about above): the image is labelled with the build's
      config.os = rs.platform.os;
      config.architecture = rs.platform.architecture;
      if (rs.platform.variant) config.variant = rs.platform.variant;
      else delete config.variant;
    }
    if (rs.author !== undefined) config.author = rs.author;
    else delete config.author;
    const image = withFlavour(withConfig(withLayers, config), 'oci');
    return { image, key };
  }

  /** A fresh directory for fetched ADD sources, under one temp dir removed when the solve ends. */
  let fetchRoot: Promise<string> | undefined;
  let fetchSeq = 0;
  const fetchDir = async () => join(await (fetchRoot ??= mkdtemp(join(tmpdir(), 'tsbuild-add-src-'))), String(fetchSeq++));

  /**
   * ADD's URL and git sources: their cache inputs (a URL with `--checksum` by URL + checksum,
   * without by the downloaded content; a git source by the commit its ref resolves to) and how
   * to fetch them when the step runs. `local` are the remaining context sources.
   */
  async function remoteSources(step: CopyStep, name: string): Promise<{ local: string[]; inputs: Digest[]; fetch?: () => Promise<FetchedSource[]> }> {
    const local: string[] = [];
    const inputs: Digest[] = [];
    const fetchers: (() => Promise<FetchedSource>)[] = [];
    const fail = (e: unknown): never => {
      if (e instanceof BuildError) throw new BuildError(e.code, `${name}: ${e.message}`, { cause: e.cause, location: step.location, step: name });
      throw new BuildError('FETCH_FAILED', `${name}: ${(e as Error).message}`, { cause: e, location: step.location, step: name });
    };
    for (const src of step.sources) {
      const g = parseGitSource(src);
      if (g) {
        const commit = await resolveGitCommit(g, signal).catch(fail);
        if (step.checksum && !commit.startsWith(step.checksum)) fail(new BuildError('CHECKSUM_MISMATCH', `checksum mismatch for ${src}: expected commit ${step.checksum}, got ${commit}`));
        const keep = step.keepGitDir ?? false;
        inputs.push(sha256(JSON.stringify({ git: g.remote, commit, subdir: g.subdir, keepGitDir: keep })));
        fetchers.push(async () => {
          const host = await checkoutGit(g, commit, await fetchDir(), keep, signal).catch(fail);
          return { host, name: '', kind: 'dir' };
        });
      } else if (isHttpSource(src)) {
        if (step.checksum) {
          const checksum = (() => {
            try {
              return parseChecksum(step.checksum, src);
            } catch (e) {
              return fail(e);
            }
          })();
          inputs.push(sha256(JSON.stringify({ url: src, checksum })));
          fetchers.push(async () => {
            const d = await downloadUrl(src, await fetchDir(), checksum, signal).catch(fail);
            return { host: d.path, name: d.name, kind: 'file' };
          });
        } else {
          // no checksum: the content decides the key, so the file is downloaded now
          const d = await downloadUrl(src, await fetchDir(), undefined, signal).catch(fail);
          inputs.push(sha256(JSON.stringify({ url: src, digest: d.digest, name: d.name, lastModified: d.lastModified?.toISOString() ?? '' })));
          fetchers.push(async () => ({ host: d.path, name: d.name, kind: 'file' }));
        }
      } else local.push(src);
    }
    if (!fetchers.length) return { local, inputs };
    return { local, inputs, fetch: async () => Promise.all(fetchers.map((f) => f())) };
  }

  /** {@link rootSourcesDigest} of `sources` in a stage's image (mounted for the time of reading). */
  async function stageSourcesDigest(image: Image, sources: readonly string[]): Promise<Digest> {
    const s = await o.snapshotter.prepare(image, signal);
    try {
      return (await rootSourcesDigest(s.rootfs, sources)) as Digest;
    } finally {
      await s.release();
    }
  }

  /** Semantic fields and input digests of a RUN's mounts (bind sources by content, never secret values). */
  async function mountInputs(step: RunStep, name: string): Promise<{ ops: Record<string, string | number | boolean>[]; inputs: Digest[] }> {
    const ops: Record<string, string | number | boolean>[] = [];
    const inputs: Digest[] = [];
    for (const m of step.mounts) {
      const target = mountTarget(step, m);
      if (m.type === 'ssh') {
        // the agent's socket path is the host's business: only what the step sees is keyed
        ops.push({ type: 'ssh', id: m.cacheId || 'default', target, uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600, required: m.required });
        continue;
      }
      if (m.type === 'secret') {
        if (m.required && !o.secrets?.has(m.cacheId)) throw new BuildError('STEP_FAILED', `${name}: secret ${m.cacheId} is required but was not given (--secret id=${m.cacheId},src=...)`, { location: step.location, step: name });
        ops.push({ type: 'secret', id: m.cacheId, target: m.env && !m.target ? '' : target, env: m.env ?? '' });
        continue;
      }
      if (m.type === 'tmpfs') {
        ops.push({ type: 'tmpfs', target, size: m.sizeLimit });
        continue;
      }
      if (m.type === 'cache') {
        ops.push({ type: 'cache', target, id: m.cacheId || target, sharing: m.cacheSharing || 'shared', from: m.from, source: m.source, uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o755 });
        continue;
      }
      // bind
      let from = 'context';
      if (m.fromSource.kind === 'context') {
        try {
          inputs.push(await o.context.hash(await o.context.select([m.source || '.'])));
        } catch (e) {
          const detail = e instanceof DockerfileError ? e.detail : (e as Error).message;
          throw new BuildError('COPY_FAILED', `${name}: bind mount source: ${detail} (is it excluded by .dockerignore?)`, { cause: e, location: step.location, step: name });
        }
      } else if (m.fromSource.kind === 'stage') {
        from = (await stageResult(m.fromSource.index)).key;
        inputs.push(from as Digest);
      } else {
        from = await (await imageInput(m.fromSource.ref)).digest();
        inputs.push(from as Digest);
      }
      ops.push({ type: 'bind', target, from, source: m.source, readonly: m.readOnly });
    }
    return { ops, inputs };
  }

  function mountTarget(step: RunStep, m: ResolvedMount): string {
    if (m.type === 'secret' && !m.target) return `/run/secrets/${m.cacheId}`;
    if (m.type === 'ssh' && !m.target) return `/run/buildkit/ssh_agent.${step.mounts.filter((x) => x.type === 'ssh').indexOf(m)}`;
    return posix.resolve(step.cwd || '/', m.target);
  }

  /** Host-side resources of a RUN's mounts; `cleanup` releases them. */
  async function execMounts(step: RunStep, name: string, held: ActiveSnapshot[], cleanup: (() => Promise<unknown>)[]): Promise<{ mounts: ExecMount[]; env: string[] }> {
    const mounts: ExecMount[] = [];
    const env: string[] = [];
    for (const m of step.mounts) {
      const target = mountTarget(step, m);
      if (m.type === 'ssh') {
        const agent = o.ssh?.get(m.cacheId || 'default');
        if (!agent) continue; // optional and not given
        const fwd = await forwardAgent(agent, { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
        cleanup.push(() => fwd.close());
        mounts.push({ type: 'bind', source: fwd.path, destination: target, readonly: false });
        // like BuildKit: SSH_AUTH_SOCK names the first forwarded agent unless the step sets it
        if (!env.some((e) => e.startsWith('SSH_AUTH_SOCK=')) && !step.env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${target}`);
      } else if (m.type === 'secret') {
        const data = o.secrets?.get(m.cacheId);
        if (!data) continue; // optional and absent
        if (m.env) env.push(`${m.env}=${data.toString('utf8')}`);
        if (!m.env || m.target) mounts.push({ type: 'secret', data, destination: target, mode: m.mode ?? 0o400, uid: m.uid ?? 0, gid: m.gid ?? 0 });
      } else if (m.type === 'tmpfs') {
        mounts.push({ type: 'tmpfs', destination: target, ...(m.sizeLimit ? { size: m.sizeLimit } : {}) });
      } else if (m.type === 'cache') {
        let lease: CacheMountLease;
        if (o.cacheMounts) lease = await o.cacheMounts.acquire(m.cacheId || target, m.cacheSharing || 'shared', { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o755 });
        else {
          const d = await mkdtemp(join(tmpdir(), 'tsbuild-cache-mount-'));
          lease = { path: d, release: () => rm(d, { recursive: true, force: true }) };
        }
        cleanup.push(() => lease.release());
        mounts.push({ type: 'bind', source: lease.path, destination: target, readonly: false });
      } else if (m.type === 'bind') {
        let source: string;
        if (m.fromSource.kind === 'context') {
          // only what .dockerignore lets through is visible (symlinks followed inside the
          // context only); a read-write bind gets a private copy whose writes are discarded
          const d = await mkdtemp(join(tmpdir(), 'tsbuild-bind-'));
          cleanup.push(() => rm(d, { recursive: true, force: true }));
          source = await contextView(o.context, m.source || '.', join(d, 'src'), !m.readOnly);
        } else {
          const img = m.fromSource.kind === 'stage' ? (await stageResult(m.fromSource.index)).image : await imageInput(m.fromSource.ref);
          const s = await o.snapshotter.prepare(img, signal);
          held.push(s);
          source = (await resolveInRoot(s.rootfs, m.source || '/')).host;
        }
        mounts.push({ type: 'bind', source, destination: target, readonly: m.readOnly });
      } else {
        throw new BuildError('NOT_SUPPORTED', `${name}: RUN --mount=type=${m.type} is not supported`, { location: step.location, step: name });
      }
    }
    return { mounts, env };
  }

  async function execute(step: RunStep | CopyStep | Extract<Step, { kind: 'WORKDIR' }>, parent: Image, input: CopyInput | undefined, network: string, name: string, id: string, compression: Compression, fetchRemote?: () => Promise<FetchedSource[]>): Promise<CommittedLayer | undefined> {
    signal.throwIfAborted();
    const snap = await o.snapshotter.prepare(parent, signal);
    const held: ActiveSnapshot[] = [snap];
    const cleanup: (() => Promise<unknown>)[] = [];
    try {
      let runtimePaths: readonly string[] = [];
      if (step.kind === 'RUN') {
        const tail: string[] = [];
        let partial = '';
        const keep = o.tailLines ?? 10;
        const m = step.mounts.length ? await execMounts(step, name, held, cleanup) : { mounts: [], env: [] };
        const res = await o.executor.run(
          snap,
          { args: step.args, env: [...step.env, ...step.proxyEnv, ...m.env], cwd: step.cwd || '/', user: step.user, network: network === 'none' ? 'none' : 'host', inlineFiles: step.inlineFiles, mounts: m.mounts },
          {
            output: (stream, chunk) => {
              o.progress?.({ kind: 'output', id, name, stream, chunk });
              const lines = (partial + chunk.toString('utf8')).split('\n');
              partial = lines.pop() ?? '';
              tail.push(...lines);
              if (tail.length > keep) tail.splice(0, tail.length - keep);
            },
          },
          signal,
        );
        if (partial) tail.push(partial);
        if (signal.aborted) throw new BuildError('CANCELED', `${name}: canceled`, { cause: signal.reason, location: step.location, step: name });
        if (res.exitCode !== 0) {
          const what = res.signal ? `was killed by ${res.signal}` : `exited with code ${res.exitCode}`;
          throw new BuildError('RUN_FAILED', `${name}: process ${JSON.stringify(step.args.join(' '))} ${what}${tail.length ? '\n' + tail.slice(-keep).join('\n') : ''}`, {
            location: step.location,
            step: name,
            exitCode: res.exitCode,
            output: tail.slice(-keep),
          });
        }
        runtimePaths = res.runtimePaths;
      } else if (step.kind === 'WORKDIR') {
        await applyWorkdir(snap.rootfs, step.path, step.user);
      } else {
        let copyInput = input;
        if (!copyInput) {
          const src = step.from.kind === 'stage' ? (await stageResult(step.from.index)).image : step.from.kind === 'image' ? await imageInput(step.from.ref) : undefined;
          if (!src) throw new BuildError('STEP_FAILED', `${name}: no source`);
          const s = await o.snapshotter.prepare(src, signal);
          held.push(s);
          copyInput = { kind: 'root', root: s.rootfs };
        }
        try {
          if (fetchRemote && copyInput.kind === 'context') copyInput = { ...copyInput, fetched: await fetchRemote() };
          await applyCopy(step, snap.rootfs, copyInput);
        } catch (e) {
          if (e instanceof BuildError) throw new BuildError(e.code, `${name}: ${e.message}`, { cause: e.cause, location: step.location, step: name });
          throw new BuildError('COPY_FAILED', `${name}: ${(e as Error).message}`, { cause: e, location: step.location, step: name });
        }
      }
      const layer = await commitUpper(snap.upper, o.content, {
        runtimePaths,
        excludeEtcFiles: step.kind === 'RUN',
        ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
        compression,
        ...(o.compressionLevel !== undefined && compression !== 'none' ? { level: o.compressionLevel } : {}),
      });
      // the upper is exactly the layer (no RUN exclusions, no clamped times): the next step may mount it as is
      if (layer && step.kind !== 'RUN' && o.sourceDateEpoch === undefined) await snap.keepAsLayer?.(layer.diffId).catch(() => undefined);
      return layer;
    } catch (e) {
      if (e instanceof BuildError) throw e;
      if (signal.aborted) throw new BuildError('CANCELED', `${name}: canceled`, { cause: e, step: name });
      // runtime and store errors keep their code in the cause; the message names the step
      const code = e instanceof TsbuildError ? ` [${e.code}]` : '';
      throw new BuildError('STEP_FAILED', `${name}: ${(e as Error).message}${code}`, { cause: e, location: step.location, step: name });
    } finally {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      for (const s of held.reverse()) await s.release();
    }
  }

  // what cannot work fails before anything runs
  const host = hostPlatform();
  for (const rs of o.build.stages.values()) {
    const firstRun = rs.steps.find((st) => st.kind === 'RUN');
    if (firstRun && !platformMatches(rs.platform, host)) {
      const why = o.executor.cannotRun?.(rs.platform);
      if (why) {
        const what = firstRun.original.replace(/\s+/g, ' ').trim();
        throw new BuildError('UNAVAILABLE', `${what}: cannot run ${formatPlatform(rs.platform)} steps on ${formatPlatform(host)}: ${why}`, { location: firstRun.location, step: what });
      }
    }
    for (const step of rs.steps) {
      const what = step.original.replace(/\s+/g, ' ').trim();
      if (step.kind === 'RUN' && step.security === 'insecure') {
        throw new BuildError('NOT_SUPPORTED', `${what}: RUN --security=insecure is not supported`, { location: step.location, step: what });
      }
      if (step.kind === 'RUN') {
        for (const m of step.mounts) {
          const id = m.cacheId || 'default';
          if (m.type === 'ssh' && m.required && !o.ssh?.has(id)) {
            throw new BuildError('UNAVAILABLE', `${what}: ssh agent ${JSON.stringify(id)} is required but was not forwarded (build --ssh ${id === 'default' ? 'default' : `${id}=SOCKET|KEY`})`, { location: step.location, step: what });
          }
        }
      }
      if (step.kind === 'COPY' && step.from.kind === 'context') {
        const remote = step.sources.find((src) => isHttpSource(src) || parseGitSource(src));
        if (remote) throw new BuildError('COPY_FAILED', `${what}: source can't be a URL or git repository for COPY (${remote}); use ADD`, { location: step.location, step: what });
      }
      if (step.kind === 'ADD' && step.checksum) {
        const local = step.from.kind !== 'context' ? step.sources[0] : step.sources.find((src) => !isHttpSource(src) && !parseGitSource(src));
        if (local !== undefined) throw new BuildError('INVALID_CHECKSUM', `${what}: checksum can't be specified for non-HTTP(S) or git sources (${local})`, { location: step.location, step: what });
        for (const src of step.sources) {
          if (isHttpSource(src)) {
            try {
              parseChecksum(step.checksum, src);
            } catch (e) {
              throw new BuildError('INVALID_CHECKSUM', `${what}: ${(e as Error).message}`, { cause: e, location: step.location, step: what });
            }
          }
        }
      }
    }
  }
  try {
    const out = new Map<number, StageResult>();
    const target = o.build.target.index;
    const results = await Promise.allSettled([...o.build.stages.keys()].filter((i) => i === target || needed(o.build, target).has(i)).map(async (i) => [i, await stageResult(i)] as const));
    // report the first real failure, not a stage canceled because of it
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failed.length) throw failed.find((e) => !(e instanceof BuildError && e.code === 'CANCELED')) ?? failed[0];
    for (const r of results) if (r.status === 'fulfilled') out.set(r.value[0], r.value[1]);
    return out;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (fetchRoot) await rm(await fetchRoot, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Stages the target depends on (transitively). */
export function needed(build: ResolvedBuild, target: number): Set<number> {
  const out = new Set<number>();
  const visit = (i: number) => {
    if (out.has(i)) return;
    out.add(i);
    const s = build.stages.get(i);
    if (!s) return;
    if (s.base.kind === 'stage') visit(s.base.index);
    for (const st of s.steps) if ((st.kind === 'COPY' || st.kind === 'ADD') && st.from.kind === 'stage') visit(st.from.index);
  };
  visit(target);
  return out;
}

