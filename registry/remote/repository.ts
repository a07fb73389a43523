import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { DigestingStream, parseDigest, sha256, type Digest } from '../../src/oci/digest.js';
import { MediaTypes, type MediaType } from '../../src/oci/media-types.js';
import { formatReference, type Reference } from '../../src/oci/reference.js';
import { ContentError } from '../../src/util/errors.js';
import { repositoryScope } from '../transport/auth.js';
import { RegistryClient } from '../transport/client.js';
import { RegistryError } from '../transport/errors.js';
import { errorFromResponse, isConnectionError, type Method, type RegistryRequest, type RegistryResponse, type RequestBody } from '../transport/fetch.js';
import { Headers } from '../transport/headers.js';
import { MAX_MANIFEST_BYTES, type RemoteOptions } from './options.js';

/** Every manifest media type tsbuild asks for (Accept), OCI first. */
export const MANIFEST_ACCEPT = [MediaTypes.OciManifest, MediaTypes.OciIndex, MediaTypes.DockerManifest, MediaTypes.DockerManifestList].join(', ');

/** A fetched manifest: its descriptor and exact bytes. */
export interface FetchedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/**
 * One repository on one registry: the HTTP operations of the distribution spec, with errors
 * that name the reference. Holds (or borrows) a {@link RegistryClient}.
 */
export class Repository {
  readonly ref: Reference;
  readonly client: RegistryClient;
  readonly opts: RemoteOptions;
  readonly #owns: boolean;
  readonly #actions: ('pull' | 'push')[];

  constructor(ref: Reference, opts: RemoteOptions, actions: ('pull' | 'push')[]) {
    this.ref = ref;
    this.opts = opts;
    this.#actions = actions;
    this.#owns = !opts.client;
    this.client = opts.client ?? new RegistryClient(ref.registry, opts);
  }

  /** `registry/repository[:tag][@digest]`, for messages. */
  get name(): string {
    return formatReference(this.ref);
  }

  /** The token scope this repository's requests ask for. */
  get scope(): string {
    return repositoryScope(this.ref.repository, this.#actions);
  }

  /** Closes the client when this repository made it. */
  async close(): Promise<void> {
    if (this.#owns) await this.client.close();
  }

  /** `<base>/v2/<repository>/<path>`. */
  async url(path: string): Promise<URL> {
    const base = await this.client.baseUrl();
    return new URL(`/v2/${this.ref.repository}/${path}`, base);
  }

  /** Sends a request to this repository with its scope. */
  async send(method: Method, urlOrPath: URL | string, init: { headers?: Record<string, string>; body?: RequestBody; idempotent?: boolean; scopes?: string[] } = {}): Promise<{ req: RegistryRequest; res: RegistryResponse }> {
    try {
      return await this.#send(method, urlOrPath, init);
    } catch (e) {
      throw this.#unreachable(e);
    }
  }

  /** A connection failure, said in words that name the reference and the registry. */
  #unreachable(e: unknown): unknown {
    if (!(e instanceof RegistryError) || e.ref !== undefined || (e.code !== 'NETWORK' && e.code !== 'TIMEOUT')) return e;
    const verb = this.#actions.includes('push') ? 'pushing' : 'pulling';
    return new RegistryError(e.code, `${verb} ${this.name}: cannot reach the registry ${this.ref.registry} (${connectionProblem(e)})`, {
      ref: this.name,
      ...(e.method ? { method: e.method } : {}),
      ...(e.url ? { url: e.url } : {}),
      cause: e,
    });
  }

  async #send(method: Method, urlOrPath: URL | string, init: { headers?: Record<string, string>; body?: RequestBody; idempotent?: boolean; scopes?: string[] }): Promise<{ req: RegistryRequest; res: RegistryResponse }> {
    const url = typeof urlOrPath === 'string' ? await this.url(urlOrPath) : urlOrPath;
    const req: RegistryRequest = {
      method,
      url,
      headers: init.headers ?? {},
      scopes: [this.scope, ...(init.scopes ?? [])],
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(init.idempotent !== undefined ? { idempotent: init.idempotent } : {}),
    };
    const res = await this.client.fetch(req, this.opts.signal);
    return { req, res };
  }

  /** Error for an unexpected response: `<verb> <ref>: <registry message> (<status> <CODE>)`. */
  async fail(res: RegistryResponse, req: RegistryRequest, verb: string, notFound?: RegistryError['code']): Promise<RegistryError> {
    return errorFromResponse(res, req, `${verb} ${this.name}`, { ref: this.name, ...(notFound ? { notFound } : {}) });
  }

  // === manifests

  /** GET a manifest by tag or digest: bounded to 4 MiB, digest verified. */
  async getManifest(tagOrDigest: string, verb = 'pulling'): Promise<FetchedManifest> {
    const { req, res } = await this.send('GET', `manifests/${tagOrDigest}`, { headers: { [Headers.Accept]: MANIFEST_ACCEPT } });
    if (res.status !== 200) throw await this.fail(res, req, verb, 'MANIFEST_UNKNOWN');
    const len = Number(res.headers[Headers.ContentLength] ?? NaN);
    if (Number.isFinite(len) && len > MAX_MANIFEST_BYTES) {
      await res.discard();
      throw new RegistryError('MANIFEST_TOO_LARGE', `${verb} ${this.name}: manifest of ${len} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, { ref: this.name, url: req.url, method: 'GET', status: 200 });
    }
    let bytes: Buffer;
    try {
      bytes = await res.bytes(MAX_MANIFEST_BYTES);
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'INVALID_RESPONSE') {
        throw new RegistryError('MANIFEST_TOO_LARGE', `${verb} ${this.name}: manifest exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, { ref: this.name, cause: e });
      }
      throw e;
    }
    const digest = sha256(bytes);
    if (tagOrDigest.includes(':') && digest !== tagOrDigest) {
      throw new ContentError('DIGEST_MISMATCH', `${verb} ${this.name}: manifest ${tagOrDigest} has digest ${digest}`);
    }
    const header = res.headers[Headers.DockerContentDigest];
    if (header && header.startsWith('sha256:') && header !== digest) {
      throw new ContentError('DIGEST_MISMATCH', `${verb} ${this.name}: registry says the manifest is ${header} but its content has digest ${digest}`);
    }
    const mediaType = manifestMediaType(bytes, res.headers[Headers.ContentType], `${verb} ${this.name}`);
    return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes };
  }

  /** HEAD a manifest: its descriptor (GET when the registry does not send Docker-Content-Digest). */
  async headManifest(tagOrDigest: string, verb = 'resolving'): Promise<Descriptor> {
    const { req, res } = await this.send('HEAD', `manifests/${tagOrDigest}`, { headers: { [Headers.Accept]: MANIFEST_ACCEPT } });
    if (res.status !== 200) throw await this.fail(res, req, verb, 'MANIFEST_UNKNOWN');
    await res.discard();
    const d = res.headers[Headers.DockerContentDigest];
    const size = Number(res.headers[Headers.ContentLength] ?? NaN);
    const mt = res.headers[Headers.ContentType]?.split(';')[0]?.trim();
    if (d && Number.isSafeInteger(size) && mt && mt !== 'application/json') {
      return { mediaType: mt, digest: parseDigest(d), size };
    }
    return (await this.getManifest(tagOrDigest, verb)).descriptor;
  }

  /** PUT a manifest under a tag or its digest; returns its descriptor. */
  async putManifest(tagOrDigest: string, bytes: Uint8Array, mediaType: MediaType): Promise<Descriptor> {
    const digest = sha256(bytes);
    if (bytes.byteLength > MAX_MANIFEST_BYTES) {
      throw new RegistryError('MANIFEST_TOO_LARGE', `pushing ${this.name}: manifest ${digest} of ${bytes.byteLength} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, { ref: this.name });
    }
    const { req, res } = await this.send('PUT', `manifests/${tagOrDigest}`, {
      headers: { [Headers.ContentType]: mediaType, [Headers.ContentLength]: String(bytes.byteLength) },
      body: bytes,
    });
    if (res.status !== 201 && res.status !== 200) throw await this.fail(res, req, 'pushing');
    await res.discard();
    const echoed = res.headers[Headers.DockerContentDigest];
    if (echoed && echoed.startsWith('sha256:') && echoed !== digest) {
      throw new RegistryError('INVALID_RESPONSE', `pushing ${this.name}: registry stored manifest ${digest} as ${echoed}`, { ref: this.name });
    }
    return { mediaType, digest, size: bytes.byteLength };
  }

  // === blobs

  /** Size of a blob in the repository, or undefined when absent. */
  async headBlob(d: Digest): Promise<number | undefined> {
    const { req, res } = await this.send('HEAD', `blobs/${d}`);
    await res.discard();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.fail(res, req, 'pushing', 'BLOB_UNKNOWN');
    const n = Number(res.headers[Headers.ContentLength] ?? NaN);
    return Number.isFinite(n) ? n : -1;
  }

  /** A small blob (a config) in memory, verified. */
  async readBlob(desc: Pick<Descriptor, 'digest' | 'size'>, max: number): Promise<Buffer> {
    if (desc.size > max) throw new RegistryError('INVALID_RESPONSE', `pulling ${this.name}: blob ${desc.digest} of ${desc.size} bytes is over the ${max}-byte limit`, { ref: this.name });
    const chunks: Buffer[] = [];
    for await (const c of this.openBlob(desc)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * A stream of a blob's bytes, verified against `desc` (errors with DIGEST_MISMATCH or
   * SIZE_MISMATCH instead of ending). When the connection drops or the body ends short, it
   * resumes with `Range: bytes=<received>-` (a registry ignoring Range gets the received
   * prefix skipped), up to `resumeAttempts` consecutive failures without progress.
   */
  openBlob(desc: Pick<Descriptor, 'digest' | 'size'>, onBytes?: (received: number) => void): Readable {
    const verify = new DigestingStream({ digest: desc.digest, size: desc.size, what: `blob ${desc.digest} of ${this.name}` });
    const chunks = this.#blobChunks(desc);
    const src = Readable.from(onBytes ? countChunks(chunks, 0, onBytes) : chunks, { objectMode: false });
    src.on('error', (e) => verify.destroy(e));
    verify.on('close', () => {
      if (!src.destroyed) src.destroy();
    });
    return src.pipe(verify);
  }

  /**
   * The bytes of a blob from `start` on, unverified (the caller verifies the whole blob, e.g.
   * when a partial download from an earlier run is completed), with the same resume behaviour
   * as {@link openBlob}.
   */
  blobFrom(desc: Pick<Descriptor, 'digest' | 'size'>, start: number, onBytes?: (received: number) => void): AsyncGenerator<Buffer> {
    const chunks = this.#blobChunks(desc, start);
    return onBytes ? countChunks(chunks, start, onBytes) : chunks;
  }

  async *#blobChunks(desc: Pick<Descriptor, 'digest' | 'size'>, start = 0): AsyncGenerator<Buffer> {
    const maxFailures = this.opts.resumeAttempts ?? 5;
    let offset = start;
    let failures = 0;
    let first = true;
    while (first || offset < desc.size) {
      first = false;
      const progressAt = offset;
      let res: RegistryResponse;
      let req: RegistryRequest;
      try {
        ({ req, res } = await this.send('GET', `blobs/${desc.digest}`, { headers: offset > 0 ? { [Headers.Range]: `bytes=${offset}-` } : {} }));
      } catch (e) {
        if (++failures > maxFailures || !resumable(e)) throw e;
        await this.#pause(failures);
        continue;
      }
      let skip = 0;
      if (res.status === 206 && offset > 0) {
        const start = /^bytes (\d+)-/.exec(res.headers[Headers.ContentRange] ?? '')?.[1];
        if (start === undefined || Number(start) !== offset) {
          await res.discard();
          throw new RegistryError('INVALID_RESPONSE', `pulling ${this.name}: blob ${desc.digest}: asked for bytes from ${offset}, got range ${res.headers[Headers.ContentRange] ?? '(none)'}`, { ref: this.name });
        }
      } else if (res.status === 200) {
        skip = offset;
      } else {
        const err = await this.fail(res, req, 'pulling', 'BLOB_UNKNOWN');
        if (++failures > maxFailures || !err.temporary) throw err;
        await this.#pause(failures);
        continue;
      }
      try {
        for await (const chunk of res.body) {
          let b = chunk as Buffer;
          if (skip > 0) {
            if (b.length <= skip) {
              skip -= b.length;
              continue;
            }
            b = b.subarray(skip);
            skip = 0;
          }
          offset += b.length;
          yield b;
        }
      } catch (e) {
        if (offset > progressAt) failures = 0;
        if (++failures > maxFailures || !resumable(e)) throw e;
        this.opts.logger?.debug(`blob ${desc.digest}: connection lost at ${offset}/${desc.size} bytes, resuming`);
        await this.#pause(failures);
        continue;
      }
      if (offset < desc.size) {
        // The body ended cleanly but short (a proxy truncated it): ask for the rest.
        if (offset > progressAt) failures = 0;
        if (++failures > maxFailures) {
          throw new RegistryError('INVALID_RESPONSE', `pulling ${this.name}: blob ${desc.digest} ended at ${offset} of ${desc.size} bytes`, { ref: this.name });
        }
        await this.#pause(failures);
      }
    }
  }

  async #pause(failures: number): Promise<void> {
    const ms = Math.min(5000, 100 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
    await sleep(ms, undefined, this.opts.signal ? { signal: this.opts.signal } : undefined);
  }
}

const CONNECTION_PROBLEMS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  CONNECT_TIMEOUT: 'connect timed out',
  HEADERS_TIMEOUT: 'no response in time',
  BODY_TIMEOUT: 'the response stalled',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no response in time',
  UND_ERR_BODY_TIMEOUT: 'the response stalled',
  UND_ERR_SOCKET: 'connection closed',
};

/** A short name for what went wrong on the connection (the first errno-like code in the chain). */
function connectionProblem(e: RegistryError): string {
  let deepest = '';
  for (let cur: unknown = e, i = 0; cur && i < 8; cur = (cur as { cause?: unknown }).cause, i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_PROBLEMS[code]) return `${CONNECTION_PROBLEMS[code]}, ${code}`;
    if (cur !== e && cur instanceof Error && cur.message) deepest = cur.message;
  }
  // TLS failures and the like: the innermost message says it best ("self-signed certificate ...")
  return deepest || (e.code === 'TIMEOUT' ? 'timed out' : 'connection failed');
}

/** Passes chunks through, calling `onBytes` with the running total (from `start`) after each. */
export async function* countChunks(src: AsyncIterable<Buffer>, start: number, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  let n = start;
  for await (const b of src) {
    n += b.length;
    yield b;
    onBytes(n);
  }
}

function resumable(e: unknown): boolean {
  if (e instanceof RegistryError) return e.temporary && e.code !== 'ABORTED';
  return isConnectionError(e) || (e as { code?: string } | null)?.code === 'ECONNRESET' || (e as { code?: string } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * The media type of manifest bytes: the JSON `mediaType` field when present, else the
 * Content-Type header, else sniffed (`manifests` → OCI index, else OCI manifest).
 * Schema 1 manifests are refused with UNSUPPORTED.
 */
export function manifestMediaType(bytes: Uint8Array, contentType: string | undefined, what: string): MediaType {
  let j: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown };
  try {
    j = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof j;
  } catch (e) {
    throw new ContentError('INVALID_MANIFEST', `${what}: manifest is not JSON`, { cause: e });
  }
  if (j.schemaVersion === 1) throw new RegistryError('UNSUPPORTED', `${what}: docker schema 1 manifests are not supported`);
  if (typeof j.mediaType === 'string' && j.mediaType) return j.mediaType;
  const ct = contentType?.split(';')[0]?.trim();
  if (ct && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  return Array.isArray(j.manifests) ? MediaTypes.OciIndex : MediaTypes.OciManifest;
}
