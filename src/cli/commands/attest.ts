import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatReference, parseReference, withTag } from '../../oci/reference.js';
import { inTotoStatement, predicateTypeFor, signEnvelope } from '../../sign/dsse.js';
import { SignError } from '../../sign/errors.js';
import { dockerReference } from '../../sign/payload.js';
import { attestationLayer, attestationTag } from '../../sign/signatures.js';
import { appendAndPush, loadSigner, resolveSubject, signatureRepository, signConnectionFlags, signRemoteOptions, type SignConnectionOpts } from './sign.js';

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
      const predicateType = predicateTypeFor(o.type);
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
      // The statement is built (and its predicate validated) before anything is pushed.
      const statement = inTotoStatement({ repository: dockerReference(ref), digest: descriptor.digest, type: o.type, predicate });
      const envelope = await signEnvelope(signer, statement);
      const tag = attestationTag(descriptor.digest);
      c.stderr.write(`Pushing attestation to: ${formatReference(withTag(sigRepo, tag))}\n`);
      const pushed = await appendAndPush(sigRepo, tag, attestationLayer(envelope, predicateType), opts);
      c.stdout.write(`${formatReference(pushed.ref)}@${pushed.descriptor.digest}\n`);
    });
}
