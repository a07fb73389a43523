import { TsbuildError } from '../util/errors.js';

/** Codes of {@link SignError}. */
export type SignErrorCode =
  /** The password does not open the encrypted private key. */
  | 'WRONG_PASSWORD'
  /** A key of a type or curve tsbuild cannot sign or verify with. */
  | 'UNSUPPORTED_KEY'
  /** A key file that is not a readable PEM / envelope / DER key. */
  | 'CORRUPT_KEY'
  /** No password was given and none could be asked for. */
  | 'NO_PASSWORD'
  /** The image to sign or verify does not exist in the registry. */
  | 'IMAGE_NOT_FOUND'
  /** The image has no signatures (or attestations) at all. */
  | 'NO_SIGNATURES'
  /** Signatures exist but none verifies with the key and matches the claims. */
  | 'NO_MATCHING_SIGNATURE'
  /** A signature or attestation layer that cannot be parsed. */
  | 'INVALID_SIGNATURE'
  /** A predicate file or type tsbuild cannot turn into an attestation. */
  | 'INVALID_PREDICATE'
  /** An annotation argument that is not `key=value`. */
  | 'INVALID_ANNOTATION';

/** Errors of cosign-compatible signing: keys, signatures, attestations, verification. */
export class SignError extends TsbuildError<SignErrorCode> {}
