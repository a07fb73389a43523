/**
 * What `tsbuild build` does after the image is stored, when it publishes: push to every name
 * (registry/remote, as `tsbuild push`), then sign the pushed digest and attach the SBOM and SLSA
 * provenance attestations (src/sign, as `tsbuild sign` / `tsbuild attest`). The builder and the
 * registry client never meet except here and in the CLI.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ImageResolver } from '../../../builder/exec/types.js';
import { push } from '../../../registry/remote/push.js';
import type { RemoteOptions } from '../../../registry/remote/options.js';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import type { Image } from '../../oci/image.js';
import { formatPlatform, type Platform } from '../../oci/platform.js';
import { formatName, formatReference, parseReference, type Reference } from '../../oci/reference.js';
import type { ImageStore } from '../../oci/store/image-store.js';
import type { Signer } from '../../sign/keys.js';
import { buildProvenance, type BaseImageUse } from '../../sign/provenance.js';
import { sbomDocument, scanImage } from '../../sign/sbom/index.js';
import { ContentError } from '../../util/errors.js';
import type { CliContext } from '../context.js';
import { attestPushed } from '../commands/attest.js';
import { progress, remoteOptions } from '../commands/pull.js';
import { loadSigner, signatureRepository, signPushed } from '../commands/sign.js';
import type { PublishPlan } from './publish-flags.js';

/** An ImageResolver that remembers which image (digest) each reference resolved to: the provenance's base images. */
export class RecordingResolver implements ImageResolver {
  readonly #inner: ImageResolver;
  readonly #used = new Map<string, BaseImageUse>();

  constructor(inner: ImageResolver) {
    this.#inner = inner;
  }

  async resolve(ref: string, platform: Platform, signal?: AbortSignal): Promise<Image> {
    const img = await this.#inner.resolve(ref, platform, signal);
    const digest = await img.digest();
    let name: Reference | undefined;
    try {
      name = parseReference(ref);
    } catch {
      name = undefined;
    }
    if (name) {
      this.#used.set(`${ref}@${digest}`, {
        ref,
        registry: name.registry,
        repository: name.repository,
        ...(name.tag ? { tag: name.tag } : {}),
        digest,
        platform: formatPlatform(platform),
      });
    }
    return img;
  }

  /** The images resolved so far, in first-use order. */
  used(): BaseImageUse[] {
    return [...this.#used.values()];
  }
}

/** Facts about the finished build that the provenance records (supplied by the build command). */
export interface BuildFacts {
  readonly dockerfile: string;
  /** The Dockerfile's path as the user gave it (relative to the context by default), `-` for stdin. */
  readonly dockerfilePath: string;
  readonly target?: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly secretIds: readonly string[];
  readonly platform: Platform;
  /** Builder-side choices (network, cache, compression, SOURCE_DATE_EPOCH). */
  readonly internal: Readonly<Record<string, unknown>>;
  readonly startedOn: Date;
}

function tsbuildVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * The publishing half of a build. {@link Publisher.prepare} does everything that can fail
 * locally (reading and decrypting the key, TLS material) before the build runs.
 */
export class Publisher {
  readonly #c: CliContext;
  readonly #plan: PublishPlan;
  readonly #refs: readonly Reference[];
  readonly #opts: RemoteOptions;
  readonly #signer: Signer | undefined;
  #resolver: RecordingResolver | undefined;

  private constructor(c: CliContext, plan: PublishPlan, refs: readonly Reference[], opts: RemoteOptions, signer: Signer | undefined) {
    this.#c = c;
    this.#plan = plan;
    this.#refs = refs;
    this.#opts = opts;
    this.#signer = signer;
  }

  /**
   * Reads the key (asking for its password) and the registries' connection settings. Call
   * before the build starts.
   */
  static async prepare(c: CliContext, plan: PublishPlan): Promise<Publisher> {
    const refs = plan.refs.map((r) => parseReference(r));
    const signer = plan.signKey ? await loadSigner(c, plan.signKey) : undefined;
    const registries = [...refs.map((r) => r.registry), ...(signer ? refs.map((r) => signatureRepository(r).registry) : [])];
    const opts = await remoteOptions(c, registries, plan.connection);
    return new Publisher(c, plan, refs, opts, signer);
  }

  /** Wraps the build's resolver so that provenance can list the base images (MUST be called at most once, before the build). */
  record(resolver: ImageResolver): ImageResolver {
    if (!this.#plan.provenance) return resolver;
    this.#resolver = new RecordingResolver(resolver);
    return this.#resolver;
  }

  /**
   * Pushes the stored image `desc` to every name, then signs and attests the pushed digest (once
   * per repository). Progress (none when `quiet`) and the pushed signature references go to stderr; returns the
   * pushed manifest digest (the caller prints it on stdout, as `tsbuild push` does).
   */
  async publish(store: ImageStore, desc: Descriptor, image: Image, facts: BuildFacts, quiet = false): Promise<Digest> {
    const c = this.#c;
    // === push
    const pushed: { ref: Reference; descriptor: Descriptor }[] = [];
    for (const ref of this.#refs) {
      if (!quiet) c.stderr.write(`pushing ${formatReference(ref)}\n`);
      const bar = progress(c, quiet, 'uploading');
      const opts = { ...this.#opts, ...(bar.onProgress ? { onProgress: bar.onProgress } : {}) };
      const d = await push(ref, { store: store.content, descriptor: desc }, opts).finally(() => bar.finish());
      if (d.digest !== desc.digest) throw new ContentError('DIGEST_MISMATCH', `pushing ${formatReference(ref)}: registry stored ${d.digest}, built ${desc.digest}`);
      if (!quiet) c.stderr.write(`digest: ${d.digest}\n`);
      pushed.push({ ref, descriptor: d });
    }
    if (!this.#signer) return desc.digest;
    const signer = this.#signer;
    // === sign and attest, once per repository
    const repos = new Map<string, { ref: Reference; descriptor: Descriptor }>();
    for (const p of pushed) if (!repos.has(formatName(p.ref))) repos.set(formatName(p.ref), p);
    const sbom = this.#plan.sbom ? await this.#sbom(image, desc.digest) : undefined;
    const provenance = this.#plan.provenance ? this.#provenance(image, facts) : undefined;
    const statements: { type: string; predicate: Uint8Array }[] = [];
    if (sbom) statements.push({ type: 'spdxjson', predicate: sbom });
    if (provenance) statements.push({ type: 'slsaprovenance1', predicate: Buffer.from(JSON.stringify(await provenance)) });
    for (const { ref, descriptor } of repos.values()) {
      await signPushed(c, signer, ref, descriptor, this.#opts, { out: c.stderr });
      for (const s of statements) await attestPushed(c, signer, ref, descriptor, s.type, s.predicate, this.#opts, c.stderr);
    }
    return desc.digest;
  }

  async #sbom(image: Image, digest: Digest): Promise<Buffer> {
    const inventory = await scanImage(image);
    const epoch = process.env['SOURCE_DATE_EPOCH'];
    const created = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
    const doc = sbomDocument('spdx-json', inventory, { name: this.#plan.refs[0]!, digest, created });
    this.#c.stderr.write(`sbom: ${inventory.packages.length} packages${inventory.os ? ` (${inventory.os.id} ${inventory.os.versionId ?? ''})` : ''}\n`);
    return Buffer.from(JSON.stringify(doc));
  }

  async #provenance(image: Image, facts: BuildFacts): Promise<unknown> {
    const mode = this.#plan.provenance!;
    const layers = mode === 'max' ? (await image.manifest()).layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })) : [];
    return buildProvenance({
      mode,
      dockerfilePath: facts.dockerfilePath,
      dockerfile: Buffer.from(facts.dockerfile, 'utf8'),
      ...(facts.target ? { target: facts.target } : {}),
      buildArgs: facts.buildArgs,
      labels: facts.labels,
      secretIds: facts.secretIds,
      platform: formatPlatform(facts.platform),
      baseImages: this.#resolver?.used() ?? [],
      internal: facts.internal,
      ...(this.#plan.provenanceBuilderId ? { builderId: this.#plan.provenanceBuilderId } : {}),
      builderVersion: tsbuildVersion(),
      invocationId: randomUUID(),
      startedOn: facts.startedOn,
      finishedOn: new Date(),
      layers,
    });
  }
}
