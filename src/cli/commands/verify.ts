import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatReference, parseReference, withTag } from '../../oci/reference.js';
import { predicateTypeFor } from '../../sign/dsse.js';
import { SignError } from '../../sign/errors.js';
import { readPublicKey, type Verifier } from '../../sign/keys.js';
import { parseAnnotations } from '../../sign/payload.js';
import { attestationTag, checkAttestations, checkSignatures, signatureTag } from '../../sign/signatures.js';
import { UsageError } from '../../util/errors.js';
import { bundleChecks, COSIGN_EXIT, collect, existingImage, exitingSignError, resolveSubject, signatureRepository, signConnectionFlags, signRemoteOptions, type SignConnectionOpts } from './sign.js';

async function loadVerifier(path: string): Promise<Verifier> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (e) {
    throw new SignError('CORRUPT_KEY', `reading key ${path}: ${(e as Error).message}`, { cause: e });
  }
  return readPublicKey(pem, `key ${path}`);
}

function outputFormat(v: string | undefined): 'text' | 'json' {
  if (v === undefined || v === 'text') return 'text';
  if (v === 'json') return 'json';
  throw new UsageError('INVALID_ARGUMENT', `--output ${v}: want text or json`);
}

interface VerifyOpts extends SignConnectionOpts {
  key: string;
  annotations: string[];
  output?: string;
  type?: string;
}

/**
 * `tsbuild verify --key PUB [-a k=v] [--output json] IMAGE` and
 * `tsbuild verify-attestation --key PUB [--type T] IMAGE`: offline keyed verification of cosign
 * `.sig` / `.att` images (no transparency log). Exit 0 when at least one signature verifies and
 * matches; 10 when the image has none, 11 when the image does not exist, 12 when none matches.
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  const attestation = cmd.name() === 'verify-attestation';
  signConnectionFlags(cmd)
    .argument('<image>', 'image reference in a registry (tag or digest)')
    .requiredOption('--key <path>', 'public key (cosign.pub)')
    .option('--output <format>', 'text or json', 'text');
  if (attestation) cmd.option('--type <type>', 'predicate type: custom, slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, … or a URI', 'custom');
  else cmd.option('-a, --annotations <key=value>', 'require this claim in the payload\'s "optional" section (repeatable)', collect, []);
  cmd.action(async (image: string, o: VerifyOpts) => {
    const c = ctx();
    const format = outputFormat(o.output);
    const annotations = parseAnnotations(o.annotations ?? []);
    const predicateType = attestation ? predicateTypeFor(o.type ?? 'custom') : undefined;
    const verifier = await loadVerifier(o.key);
    const ref = parseReference(image);
    const sigRepo = signatureRepository(ref);
    const opts = await signRemoteOptions(c, [ref, sigRepo], o);
    const { descriptor } = await resolveSubject(image, opts);
    const digest = descriptor.digest;
    const tag = attestation ? attestationTag(digest) : signatureTag(digest);
    const what = attestation ? 'attestations' : 'signatures';
    const sigImage = await existingImage(withTag(sigRepo, tag), opts);

    if (attestation) {
      if (!sigImage) throw exitingSignError('NO_SIGNATURES', `no ${what} found for ${formatReference(ref)} (${digest}): ${formatReference(withTag(sigRepo, tag))} does not exist`, COSIGN_EXIT.ImageWithoutSignature);
      const checks = await checkAttestations(sigImage, digest, verifier, predicateType);
      if (checks.length === 0) throw exitingSignError('NO_SIGNATURES', `no attestations found for ${formatReference(ref)} (${digest})`, COSIGN_EXIT.ImageWithoutSignature);
      const good = checks.filter((x) => x.ok);
      if (good.length === 0) {
        const why = [...new Set(checks.map((x) => x.reason))].join('; ');
        throw exitingSignError('NO_MATCHING_SIGNATURE', `no matching attestations for ${formatReference(ref)} (${digest}): ${why}`, COSIGN_EXIT.NoMatchingSignature);
      }
      c.stderr.write(`Verification for ${formatReference(ref)} --\nThe following checks were performed on each of these attestations:\n  - The signature on the DSSE envelope was verified against the specified public key\n  - The in-toto subject digest matched ${digest}\n  - The predicate type is ${predicateType}\n`);
      if (format === 'json') c.stdout.write(`${JSON.stringify(good.map((g) => JSON.parse(g.envelope ?? 'null')))}\n`);
      else for (const g of good) c.stdout.write(`${g.envelope}\n`);
      return;
    }

    // Both forms: the `.sig` image and Sigstore bundles attached as referrers (cosign v3).
    const checks = [
      ...(sigImage ? await checkSignatures(sigImage, digest, verifier, annotations) : []),
      ...(await bundleChecks(c, sigRepo, digest, verifier, annotations, opts)).map((b) => ({ ...b, payload: b.statement })),
    ];
    if (checks.length === 0) throw exitingSignError('NO_SIGNATURES', `no signatures found for ${formatReference(ref)} (${digest}): neither ${formatReference(withTag(sigRepo, tag))} nor a sigstore bundle referrer exists`, COSIGN_EXIT.ImageWithoutSignature);
    const good = checks.filter((x) => x.ok);
    if (good.length === 0) {
      const why = [...new Set(checks.map((x) => x.reason))].join('; ');
      throw exitingSignError('NO_MATCHING_SIGNATURE', `no matching signatures for ${formatReference(ref)} (${digest}): ${why}`, COSIGN_EXIT.NoMatchingSignature);
    }
    c.stderr.write(
      `Verification for ${formatReference(ref)} --\nThe following checks were performed on each of these signatures:\n  - The cosign claims were validated\n  - The signatures were verified against the specified public key\n` +
        `${good.length} of ${checks.length} signature(s) verified\n`,
    );
    const payloads = good.map((g) => g.payload);
    if (format === 'json') c.stdout.write(`${JSON.stringify(payloads)}\n`);
    else for (const p of payloads) c.stdout.write(`${JSON.stringify(p)}\n`);
  });
}
