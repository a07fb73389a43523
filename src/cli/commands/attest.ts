import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { formatReference, parseReference, withTag, type Reference } from '../../oci/reference.js';
import type { Signer } from '../../sign/keys.js';
import type { RemoteOptions } from '../../../registry/remote/options.js';
import { inTotoStatement, predicateTypeFor, signEnvelope } from '../../sign/dsse.js';
import { SignError } from '../../sign/errors.js';
import { dockerReference } from '../../sign/payload.js';
import { attestationLayer, attestationTag } from '../../sign/signatures.js';
import { appendAndPush, loadSigner, resolveSubject, signatureRepository, signConnectionFlags, signRemoteOptions, type SignConnectionOpts } from './sign.js';

/**
 * Attaches an in-toto statement (`type`: a cosign `--type` name or URI; `predicate`: the file's
 * bytes) about the image `descriptor` at `ref`'s repository: signed into a DSSE envelope and
 * appended to `sha256-<hex>.att` (in `$COSIGN_REPOSITORY` when set). The statement is built, and
 * its predicate validated, before anything is pushed. Prints the pushed reference on `out`
 * (default stdout).
 */
export async function attestPushed(c: CliContext, signer: Signer, ref: Reference, descriptor: Descriptor, type: string, predicate: Uint8Array, opts: RemoteOptions, out: NodeJS.WritableStream = c.stdout): Promise<void> {
  const sigRepo = signatureRepository(ref);
  const statement = inTotoStatement({ repository: dockerReference(ref), digest: descriptor.digest, type, predicate });
  const envelope = await signEnvelope(signer, statement);
  const tag = attestationTag(descriptor.digest);
  c.stderr.write(`Pushing attestation to: ${formatReference(withTag(sigRepo, tag))}\n`);
  const pushed = await appendAndPush(sigRepo, tag, attestationLayer(envelope, predicateTypeFor(type)), opts);
  out.write(`${formatReference(pushed.ref)}@${pushed.descriptor.digest}\n`);
}

/**
 * `tsbuild attest --key K --type T --predicate F IMAGE`: an in-toto statement about the image's
 * digest, signed in a DSSE envelope and appended to the `sha256-<hex>.att` image (cosign attest).
 */
export function register(cmd: Command, ctx: () => CliContext): void {
  signConnectionFlags(cmd)
    .argument('<image>', 'image reference in a registry (tag or digest)')
    .requiredOption('--key <path>', 'private key (cosign.key, or an EC/PKCS#8 PEM)')
    .requiredOption('--predicate <file>', 'the predicate (JSON; any text for --type custom)')
    .option('--type <type>', 'custom, slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, link, vuln, openvex, or a predicate type URI', 'custom')
    .action(async (image: string, o: SignConnectionOpts & { key: string; predicate: string; type: string }) => {
      const c = ctx();
      predicateTypeFor(o.type); // an unknown --type fails before the key is read
      let predicate: Buffer;
      try {
        predicate = await readFile(o.predicate);
      } catch (e) {
        throw new SignError('INVALID_PREDICATE', `reading predicate ${o.predicate}: ${(e as Error).message}`, { cause: e });
      }
      const signer = await loadSigner(c, o.key);
      const ref = parseReference(image);
      const sigRepo = signatureRepository(ref);
      const opts = await signRemoteOptions(c, [ref, sigRepo], o);
      const { descriptor } = await resolveSubject(image, opts);
      await attestPushed(c, signer, ref, descriptor, o.type, predicate, opts);
    });
}
