import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import type { Image } from '../../oci/image.js';
import { MediaTypes } from '../../oci/media-types.js';
import { formatReference, parseReference, withDigest, withTag, type Reference } from '../../oci/reference.js';
import { SignError, type SignErrorCode } from '../../sign/errors.js';
import { readPrivateKey, verifierFromKey, type Signer } from '../../sign/keys.js';
import { dockerReference, parseAnnotations } from '../../sign/payload.js';
import { appendSignatureLayers, signatureLayer, signatureTag, type SignatureLayer } from '../../sign/signatures.js';
import { ContentError, TsbuildError, UsageError } from '../../util/errors.js';
import { bundleReferrer, checkBundle, signBundle, signStatement, SIGSTORE_BUNDLE_MEDIA_TYPE, type BundleCheck } from '../../sign/bundle.js';
import type { Verifier } from '../../sign/keys.js';
import { readAll } from '../../util/streams.js';
import { remoteHead, remoteImage } from '../../../registry/remote/image.js';
import { addReferrerToTag, referrers } from '../../../registry/remote/referrers.js';
import type { RemoteOptions } from '../../../registry/remote/options.js';
import { push } from '../../../registry/remote/push.js';
import { connectionFlags, remoteOptions, type ConnectionOpts } from './pull.js';

/** cosign's exit statuses (cmd/cosign/errors/exit_codes.go). */
export const COSIGN_EXIT = { ImageWithoutSignature: 10, NonExistentTag: 11, NoMatchingSignature: 12 } as const;

/** A SignError that ends the process with `status`. */
export function exitingSignError(code: SignErrorCode, message: string, status: number): SignError {
  return Object.assign(new SignError(code, message), { exitCode: status });
}

/** Collects a repeatable option into an array. */
export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Connection flags plus cosign's `--allow-insecure-registry`. */
export interface SignConnectionOpts extends ConnectionOpts {
  allowInsecureRegistry?: boolean;
}

/** Adds the registry flags every signing command takes. */
export function signConnectionFlags(cmd: Command): Command {
  return connectionFlags(cmd).option('--allow-insecure-registry', 'allow plain HTTP and unverified TLS (same as --tls-verify=false)');
}

/** RemoteOptions for the registries of `refs`. */
export async function signRemoteOptions(c: CliContext, refs: readonly Reference[], o: SignConnectionOpts): Promise<RemoteOptions> {
  return remoteOptions(c, refs.map((r) => r.registry), o.allowInsecureRegistry ? { ...o, tlsVerify: false, insecure: true } : o);
}

/**
 * Reads the password of an encrypted key: $COSIGN_PASSWORD when set (even empty), else a prompt
 * on the terminal (twice with `confirm`); SignError NO_PASSWORD when neither is possible.
 */
export async function readPassword(c: CliContext, prompt: string, confirm = false): Promise<string> {
  const env = process.env['COSIGN_PASSWORD'];
  if (env !== undefined) return env;
  if (!process.stdin.isTTY) throw new SignError('NO_PASSWORD', 'no password: set COSIGN_PASSWORD or run on a terminal');
  const first = await promptHidden(c, prompt);
  if (confirm) {
    const again = await promptHidden(c, 'Enter password for private key again: ');
    if (again !== first) throw new SignError('NO_PASSWORD', 'passwords do not match');
  }
  return first;
}

function promptHidden(c: CliContext, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    c.stderr.write(prompt);
    let buf = '';
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      c.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new SignError('NO_PASSWORD', 'interrupted'));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Reads `--key` (cosign key file or plain PEM), asking for a password only when it is encrypted. */
export async function loadSigner(c: CliContext, path: string): Promise<Signer> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (e) {
    throw new SignError('CORRUPT_KEY', `reading key ${path}: ${(e as Error).message}`, { cause: e });
  }
  return readPrivateKey(pem, () => readPassword(c, 'Enter password for private key: '), `key ${path}`);
}

/** The image a command works on: its reference and manifest descriptor (by HEAD; digest references are checked). */
export async function resolveSubject(image: string, opts: RemoteOptions): Promise<{ ref: Reference; descriptor: Descriptor }> {
  const ref = parseReference(image);
  let descriptor: Descriptor;
  try {
    descriptor = await remoteHead(ref, opts);
  } catch (e) {
    if (isNotFound(e)) throw Object.assign(new SignError('IMAGE_NOT_FOUND', `image ${formatReference(ref)} not found`, { cause: e }), { exitCode: COSIGN_EXIT.NonExistentTag });
    throw e;
  }
  if (ref.digest && descriptor.digest !== ref.digest) {
    throw new ContentError('DIGEST_MISMATCH', `image ${formatReference(ref)}: registry answered with digest ${descriptor.digest}`);
  }
  return { ref, descriptor };
}

/** True for a registry 404 (manifest or repository unknown). */
export function isNotFound(e: unknown): boolean {
  if (!(e instanceof TsbuildError)) return false;
  if (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN' || e.code === 'NOT_FOUND') return true;
  return (e as { status?: number }).status === 404;
}

/** Where signatures of `ref` live: `$COSIGN_REPOSITORY` (a repository, no tag) or `ref`'s own repository. */
export function signatureRepository(ref: Reference): Reference {
  const over = process.env['COSIGN_REPOSITORY'];
  if (!over) return ref;
  const r = parseReference(over);
  if (r.digest || (r.tag && r.tag !== 'latest') || over.includes('@')) throw new UsageError('INVALID_ARGUMENT', `COSIGN_REPOSITORY=${over}: want a repository without tag or digest`);
  return r;
}

/** The image at `ref`, or undefined when the registry has no such manifest. */
export async function existingImage(ref: Reference, opts: RemoteOptions): Promise<Image | undefined> {
  try {
    const img = await remoteImage(ref, opts);
    await img.manifest();
    return img;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/**
 * Appends `layer` to the image tagged `tag` in `repo` (creating it when absent) and pushes it;
 * returns the reference of the pushed signature manifest.
 */
export async function appendAndPush(repo: Reference, tag: string, layer: SignatureLayer, opts: RemoteOptions, signer?: Signer): Promise<{ ref: Reference; descriptor: Descriptor }> {
  const target = withTag(repo, tag);
  const base = await existingImage(target, opts);
  const img = appendSignatureLayers(base, [layer], signer ? { verifier: verifierFromKey(signer.publicKey) } : {});
  const descriptor = await push(target, img, opts);
  return { ref: target, descriptor };
}

/** True when the registry answers the OCI 1.1 referrers API for `digest` in `repo` (any failure: false). */
export async function hasReferrersApi(repo: Reference, digest: Digest, opts: RemoteOptions): Promise<boolean> {
  try {
    return (await referrers(withDigest(repo, digest), digest, opts)).source === 'api';
  } catch {
    return false;
  }
}

/**
 * Attaches the Sigstore bundle form of a signature to `subject` in `repo` as an OCI 1.1 referrer
 * (pushed by digest). Without the referrers API (`api` false) the referrers tag schema
 * (`sha256-<hex>` index) is updated too, which cosign's referrers lookup falls back to.
 */
export async function pushBundle(repo: Reference, subject: Descriptor, bundle: Uint8Array, api: boolean, opts: RemoteOptions): Promise<{ ref: Reference; descriptor: Descriptor }> {
  const img = bundleReferrer(subject, bundle);
  const target = withDigest(repo, await img.digest());
  const descriptor = await push(target, img, opts);
  if (!api) await addReferrerToTag(repo, subject.digest, { ...descriptor, artifactType: SIGSTORE_BUNDLE_MEDIA_TYPE, annotations: (await img.manifest()).annotations ?? {} }, opts);
  return { ref: target, descriptor };
}

/** Referrer artifact types a Sigstore bundle may be listed under (its own, or its empty config's). */
const BUNDLE_ARTIFACT_TYPES = new Set<string>([SIGSTORE_BUNDLE_MEDIA_TYPE, MediaTypes.OciEmpty]);

/**
 * Checks every Sigstore bundle attached to `digest` in `repo` (referrers API or tag schema).
 * A registry that cannot list referrers counts as having none.
 */
export async function bundleChecks(c: CliContext, repo: Reference, digest: Digest, verifier: Verifier, annotations: Readonly<Record<string, string>>, opts: RemoteOptions): Promise<BundleCheck[]> {
  let found: readonly Descriptor[];
  try {
    // Not filtered by artifactType: some registries (go-containerregistry's) report the config's
    // media type (the empty config) as a referrer's artifactType instead of the manifest's own
    // artifactType. The manifests' layers are checked below.
    found = (await referrers(withDigest(repo, digest), digest, opts)).manifests.filter((d) => d.artifactType === undefined || BUNDLE_ARTIFACT_TYPES.has(d.artifactType));
  } catch (e) {
    c.logger.debug(`listing referrers of ${digest}: ${(e as Error).message}`);
    return [];
  }
  const out: BundleCheck[] = [];
  for (const d of found) {
    const img = await remoteImage(withDigest(repo, d.digest), opts);
    const layers = (await img.manifest()).layers.filter((l) => l.mediaType === SIGSTORE_BUNDLE_MEDIA_TYPE);
    for (const l of layers) {
      const bytes = await readAll(await (await img.layerByDigest(l.digest)).compressed(), 16 << 20, `bundle ${l.digest}`);
      try {
        out.push(checkBundle(bytes, digest, verifier, annotations));
      } catch (e) {
        out.push({ ok: false, reason: (e as Error).message });
      }
    }
  }
  return out;
}

/**
 * Signs the image `descriptor` (already in the registry at `ref`'s repository): appends the
 * simple-signing signature to `sha256-<hex>.sig` (in `$COSIGN_REPOSITORY` when set) and, where the
 * registry has the referrers API (or always with `newBundleFormat`), attaches the Sigstore bundle.
 * Prints what `tsbuild sign` prints (the pushed references on `out`, default stdout; progress on stderr).
 */
export async function signPushed(
  c: CliContext,
  signer: Signer,
  ref: Reference,
  descriptor: Descriptor,
  opts: RemoteOptions,
  o: { readonly annotations?: Readonly<Record<string, string>>; readonly newBundleFormat?: boolean; readonly out?: NodeJS.WritableStream } = {},
): Promise<void> {
  const out = o.out ?? c.stdout;
  const annotations = o.annotations ?? {};
  const sigRepo = signatureRepository(ref);
  const digest: Digest = descriptor.digest;
  const layer = await signatureLayer(signer, dockerReference(ref), digest, annotations);
  const tag = signatureTag(digest);
  c.stderr.write(`Pushing signature to: ${formatReference(withTag(sigRepo, tag))}\n`);
  const api = await hasReferrersApi(sigRepo, digest, opts);
  const bundle = o.newBundleFormat || api ? await signBundle(signer, signStatement(digest, annotations)) : undefined;
  const pushed = await appendAndPush(sigRepo, tag, layer, opts, signer);
  out.write(`${formatReference(pushed.ref)}@${pushed.descriptor.digest}\n`);
  if (bundle) {
    const b = await pushBundle(sigRepo, descriptor, bundle, api, opts);
    c.stderr.write(`Attached sigstore bundle ${b.descriptor.digest} (${api ? 'referrers API' : 'referrers tag schema'})\n`);
    out.write(`${formatReference(b.ref)}\n`);
  }
}

/**
 * `tsbuild sign --key K [-a k=v]... [--new-bundle-format] IMAGE`: cosign-compatible signature pushed
 * as `sha256-<hex>.sig`, plus the Sigstore bundle referrer where the registry has the referrers
 * API (or always with `--new-bundle-format`).
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  signConnectionFlags(cmd)
    .argument('<image>', 'image reference in a registry (tag or digest); the digest is what gets signed')
    .requiredOption('--key <path>', 'private key (cosign.key, or an EC/PKCS#8 PEM)')
    .option('-a, --annotations <key=value>', 'extra claim in the payload\'s "optional" section (repeatable)', collect, [])
    .option('--new-bundle-format', 'also attach the signature as a Sigstore bundle referrer (the form cosign v3 looks for first), through the referrers tag schema when the registry lacks the referrers API; without this flag the bundle is attached only when the registry has the API')
    .action(async (image: string, o: SignConnectionOpts & { key: string; annotations: string[]; newBundleFormat?: boolean }) => {
      const c = ctx();
      // Everything that can fail locally fails before the registry is touched.
      const annotations = parseAnnotations(o.annotations);
      const signer = await loadSigner(c, o.key);
      const ref = parseReference(image);
      const sigRepo = signatureRepository(ref);
      const opts = await signRemoteOptions(c, [ref, sigRepo], o);
      const { descriptor } = await resolveSubject(image, opts);
      await signPushed(c, signer, ref, descriptor, opts, { annotations, ...(o.newBundleFormat ? { newBundleFormat: true } : {}) });
    });
}
