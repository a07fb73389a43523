import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestAlgorithm, digestHex, type Digest } from '../../src/oci/digest.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import type { Reference } from '../../src/oci/reference.js';
import { RegistryError } from '../transport/errors.js';
import { Headers } from '../transport/headers.js';
import { MAX_MANIFEST_BYTES, type RemoteOptions } from './options.js';
import { parseIndex } from './parse.js';
import { Repository } from './repository.js';

/** The fallback tag of the referrers tag schema for a subject: `sha256-<hex>` (distribution-spec). */
export function referrersTag(subject: Digest): string {
  return `${digestAlgorithm(subject)}-${digestHex(subject)}`;
}

/** What {@link referrers} found and how. */
export interface ReferrersResult {
  readonly manifests: readonly Descriptor[];
  /** 'api' when the registry answered the referrers API, 'tag' when the fallback tag was read. */
  readonly source: 'api' | 'tag';
}

/**
 * Lists the manifests whose `subject` is `subject` in `ref`'s repository: `GET
 * /v2/<name>/referrers/<digest>` (following Link pagination), or, when the registry does not
 * implement the API (404 without an index body, 400, 405), the index tagged `sha256-<hex>`
 * (an absent tag means no referrers). `artifactType` filters client-side as well.
 */
export async function referrers(ref: Reference, subject: Digest, opts: RemoteOptions & { readonly artifactType?: string } = {}): Promise<ReferrersResult> {
  const repo = new Repository(ref, opts, ['pull']);
  try {
    const out: Descriptor[] = [];
    let path: string | URL = `referrers/${subject}${opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : ''}`;
    for (let page = 0; page < 100; page++) {
      const { req, res } = await repo.send('GET', path, { headers: { [Headers.Accept]: MediaTypes.OciIndex } });
      const ct = res.headers[Headers.ContentType] ?? '';
      if (res.status !== 200 || !ct.startsWith(MediaTypes.OciIndex)) {
        if (page === 0 && (res.status === 404 || res.status === 400 || res.status === 405 || res.status === 200)) {
          await res.discard();
          return { manifests: filter(await viaTag(repo, subject), opts.artifactType), source: 'tag' };
        }
        throw await repo.fail(res, req, 'listing referrers of');
      }
      const idx = parseIndex(await res.bytes(MAX_MANIFEST_BYTES), `referrers of ${subject} in ${repo.name}`);
      out.push(...idx.manifests);
      const link = res.headers[Headers.Link];
      const next = link ? /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1] : undefined;
      if (!next) break;
      path = new URL(next, res.url);
    }
    return { manifests: filter(out, opts.artifactType), source: 'api' };
  } finally {
    await repo.close();
  }
}

async function viaTag(repo: Repository, subject: Digest): Promise<Descriptor[]> {
  try {
    const m = await repo.getManifest(referrersTag(subject), 'listing referrers of');
    return [...parseIndex(m.bytes, `referrers tag of ${subject} in ${repo.name}`).manifests];
  } catch (e) {
    if (e instanceof RegistryError && (e.code === 'MANIFEST_UNKNOWN' || e.status === 404)) return [];
    throw e;
  }
}

function filter(ms: readonly Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType ? ms.filter((m) => m.artifactType === artifactType) : [...ms];
}

/**
 * Records `referrer` (a manifest whose `subject` is `subject`) in the referrers tag schema:
 * reads the index tagged `sha256-<hex>` (or starts an empty one), adds the descriptor (with
 * its artifactType and annotations) unless present, and puts it back. For registries without
 * the referrers API (distribution 2.8); registries with it index `subject` on their own.
 * Returns the new index descriptor. Not atomic: concurrent writers may lose an entry, as with
 * every client of the tag schema.
 */
export async function addReferrerToTag(ref: Reference, subject: Digest, referrer: Descriptor, opts: RemoteOptions = {}): Promise<Descriptor> {
  const repo = new Repository(ref, opts, ['pull', 'push']);
  try {
    const tag = referrersTag(subject);
    let current: Descriptor[] = [];
    try {
      const m = await repo.getManifest(tag, 'updating referrers of');
      current = [...parseIndex(m.bytes, `referrers tag of ${subject} in ${repo.name}`).manifests];
    } catch (e) {
      if (!(e instanceof RegistryError && (e.code === 'MANIFEST_UNKNOWN' || e.status === 404))) throw e;
    }
    if (!current.some((d) => d.digest === referrer.digest)) current.push(referrer);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: current }));
    return await repo.putManifest(tag, bytes, MediaTypes.OciIndex);
  } finally {
    await repo.close();
  }
}
