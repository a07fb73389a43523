/**
 * cosign key files, read and written with node:crypto and tweetnacl (no network, no sigstore-js).
 *
 * The private key file cosign writes (`cosign generate-key-pair`) is a PEM block of type
 * `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is
 * go-securesystemslib's `encrypted.Encrypt` envelope (JSON): scrypt derives a 32-byte key from the
 * password and a 32-byte salt, NaCl secretbox (XSalsa20-Poly1305, 24-byte nonce) seals the PKCS#8
 * DER of the private key. The public key is a `PUBLIC KEY` PEM (PKIX / SubjectPublicKeyInfo).
 * https://github.com/secure-systems-lab/go-securesystemslib/blob/main/encrypted/encrypted.go
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scryptSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { SignError } from './errors.js';

/** PEM type of the private key files cosign 2.x writes. */
export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** PEM type of the private key files older cosign releases wrote; still read. */
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

/** scrypt parameters go-securesystemslib accepts (legacy, standard, OWASP); tsbuild writes the standard set. */
const SCRYPT_PARAMS: readonly { N: number; r: number; p: number }[] = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];
const STANDARD_SCRYPT = { N: 65536, r: 8, p: 1 } as const;
const KEY_SIZE = 32;
const SALT_SIZE = 32;
const NONCE_SIZE = 24;

/** A key that can sign: what `tsbuild sign` and `tsbuild attest` use. */
export interface Signer {
  /** Signs `data` the way cosign does for this key type (ECDSA: SHA-256, ASN.1 DER signature). */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** The matching public key. */
  readonly publicKey: KeyObject;
}

/** A key that can verify: a public key from a `cosign.pub`-style PEM. */
export interface Verifier {
  /** True when `signature` is valid for `data` under this key; never throws for a bad signature. */
  verify(data: Uint8Array, signature: Uint8Array): boolean;
  readonly publicKey: KeyObject;
}

/** A freshly generated key pair, already encoded as cosign writes it. */
export interface GeneratedKeyPair {
  /** `ENCRYPTED SIGSTORE PRIVATE KEY` PEM. */
  readonly privateKeyPem: string;
  /** `PUBLIC KEY` PEM (PKIX, ECDSA P-256). */
  readonly publicKeyPem: string;
}

/** One PEM block. */
interface PemBlock {
  readonly type: string;
  readonly der: Buffer;
}

/** Encodes `der` as a PEM block with 64-character lines (Go's encoding/pem). */
export function encodePem(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}${lines.length ? '\n' : ''}-----END ${type}-----\n`;
}

/** The first PEM block of `text` (CORRUPT_KEY naming `what` when there is none). */
function decodePem(text: string, what: string): PemBlock {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new SignError('CORRUPT_KEY', `${what}: no PEM block found`);
  const body = (m[2] as string).split(/\r?\n/).filter((l) => l !== '' && !l.includes(':'));
  const joined = body.join('');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(joined)) throw new SignError('CORRUPT_KEY', `${what}: PEM body is not base64`);
  return { type: m[1] as string, der: Buffer.from(joined, 'base64') };
}

/** A plain Uint8Array copy (tweetnacl checks `instanceof Uint8Array` and dislikes Buffer pools). */
function u8(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function deriveKey(password: string, salt: Uint8Array, p: { N: number; r: number; p: number }): Buffer {
  return scryptSync(Buffer.from(password, 'utf8'), salt, KEY_SIZE, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + (16 << 20) });
}

/**
 * go-securesystemslib `encrypted.Encrypt(plaintext, password)` with the standard scrypt
 * parameters: returns the JSON envelope bytes (field order as Go writes them).
 */
export function encryptEnvelope(plaintext: Uint8Array, password: string): Buffer {
  const salt = randomBytes(SALT_SIZE);
  const nonce = randomBytes(NONCE_SIZE);
  const key = deriveKey(password, salt, STANDARD_SCRYPT);
  const sealed = nacl.secretbox(u8(plaintext), u8(nonce), u8(key));
  const env = {
    kdf: { name: 'scrypt', params: { N: STANDARD_SCRYPT.N, r: STANDARD_SCRYPT.r, p: STANDARD_SCRYPT.p }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  };
  return Buffer.from(JSON.stringify(env), 'utf8');
}

function b64Field(v: unknown, field: string, what: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new SignError('CORRUPT_KEY', `${what}: ${field} is not base64`);
  return Buffer.from(v, 'base64');
}

/**
 * go-securesystemslib `encrypted.Decrypt(envelope, password)`: the plaintext, or SignError
 * WRONG_PASSWORD when the secretbox does not open, CORRUPT_KEY for a malformed envelope and
 * UNSUPPORTED_KEY for a KDF, cipher or parameter set go-securesystemslib would refuse too.
 */
export function decryptEnvelope(envelope: Uint8Array, password: string, what = 'private key'): Buffer {
  let env: { kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown }; cipher?: { name?: unknown; nonce?: unknown }; ciphertext?: unknown };
  try {
    env = JSON.parse(Buffer.from(envelope).toString('utf8')) as typeof env;
  } catch (e) {
    throw new SignError('CORRUPT_KEY', `${what}: encrypted key envelope is not json`, { cause: e });
  }
  if (!env || typeof env !== 'object' || !env.kdf || !env.cipher) throw new SignError('CORRUPT_KEY', `${what}: encrypted key envelope lacks kdf or cipher`);
  if (env.kdf.name !== 'scrypt') throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported key derivation function ${JSON.stringify(env.kdf.name)}`);
  if (env.cipher.name !== 'nacl/secretbox') throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported cipher ${JSON.stringify(env.cipher.name)}`);
  const p = env.kdf.params ?? {};
  const params = SCRYPT_PARAMS.find((s) => s.N === p.N && s.r === p.r && s.p === p.p);
  if (!params) throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported scrypt parameters ${JSON.stringify(p)}`);
  const salt = b64Field(env.kdf.salt, 'kdf.salt', what);
  const nonce = b64Field(env.cipher.nonce, 'cipher.nonce', what);
  const ct = b64Field(env.ciphertext, 'ciphertext', what);
  if (nonce.length !== NONCE_SIZE) throw new SignError('CORRUPT_KEY', `${what}: nonce is ${nonce.length} bytes, want ${NONCE_SIZE}`);
  if (ct.length < nacl.secretbox.overheadLength) throw new SignError('CORRUPT_KEY', `${what}: ciphertext is too short`);
  const key = deriveKey(password, salt, params);
  const plain = nacl.secretbox.open(u8(ct), u8(nonce), u8(key));
  if (!plain) throw new SignError('WRONG_PASSWORD', `${what}: decryption failed (wrong password or corrupted key)`);
  return Buffer.from(plain);
}

/** Throws UNSUPPORTED_KEY unless cosign can sign/verify with a key of this type. */
function checkKeyType(k: KeyObject, what: string): void {
  const t = k.asymmetricKeyType;
  if (t === 'ec') {
    const curve = k.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'secp384r1' || curve === 'secp521r1') return;
    throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported elliptic curve ${curve ?? 'unknown'} (want P-256, P-384 or P-521)`);
  }
  if (t === 'ed25519' || t === 'rsa') return;
  throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported key type ${t ?? 'unknown'} (want ECDSA, Ed25519 or RSA)`);
}

/** The digest cosign hashes with for a key (SHA-256 everywhere; Ed25519 signs the message itself). */
function hashFor(k: KeyObject): string | null {
  return k.asymmetricKeyType === 'ed25519' ? null : 'sha256';
}

/** A Signer around a private KeyObject (type already checked). */
export function signerFromKey(key: KeyObject): Signer {
  checkKeyType(key, 'private key');
  const publicKey = createPublicKey(key);
  return {
    publicKey,
    sign: async (data) => new Uint8Array(cryptoSign(hashFor(key), data, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key)),
  };
}

/** A Verifier around a public KeyObject (type already checked). */
export function verifierFromKey(publicKey: KeyObject): Verifier {
  checkKeyType(publicKey, 'public key');
  return {
    publicKey,
    verify: (data, signature) => {
      try {
        return cryptoVerify(hashFor(publicKey), data, publicKey.asymmetricKeyType === 'ec' ? { key: publicKey, dsaEncoding: 'der' } : publicKey, signature);
      } catch {
        return false;
      }
    },
  };
}

/**
 * Reads a private key file: cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN
 * PRIVATE KEY` (needs `password`), or a plain `EC PRIVATE KEY`, `PRIVATE KEY` (PKCS#8) or
 * `RSA PRIVATE KEY` PEM. `password` is called only for encrypted files. Errors: WRONG_PASSWORD,
 * CORRUPT_KEY, UNSUPPORTED_KEY (SignError), naming `what`.
 */
export async function readPrivateKey(pem: string | Uint8Array, password: () => Promise<string> | string, what = 'private key'): Promise<Signer> {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('utf8');
  const block = decodePem(text, what);
  let key: KeyObject;
  switch (block.type) {
    case SIGSTORE_PRIVATE_KEY_PEM:
    case COSIGN_PRIVATE_KEY_PEM: {
      const der = decryptEnvelope(block.der, await password(), what);
      key = parseDer(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), what);
      break;
    }
    case 'EC PRIVATE KEY':
      key = parseDer(() => createPrivateKey({ key: block.der, format: 'der', type: 'sec1' }), what);
      break;
    case 'PRIVATE KEY':
      key = parseDer(() => createPrivateKey({ key: block.der, format: 'der', type: 'pkcs8' }), what);
      break;
    case 'RSA PRIVATE KEY':
      key = parseDer(() => createPrivateKey({ key: block.der, format: 'der', type: 'pkcs1' }), what);
      break;
    default:
      throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported PEM type ${JSON.stringify(block.type)}`);
  }
  checkKeyType(key, what);
  return signerFromKey(key);
}

/**
 * Reads a public key PEM (`PUBLIC KEY`, PKIX; as `cosign.pub`). A private key file given by
 * mistake is refused (CORRUPT_KEY); a certificate is accepted for its public key.
 */
export function readPublicKey(pem: string | Uint8Array, what = 'public key'): Verifier {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('utf8');
  const block = decodePem(text, what);
  let key: KeyObject;
  if (block.type === 'PUBLIC KEY') key = parseDer(() => createPublicKey({ key: block.der, format: 'der', type: 'spki' }), what);
  else if (block.type === 'CERTIFICATE') key = parseDer(() => createPublicKey(text), what);
  else if (block.type.includes('PRIVATE KEY')) throw new SignError('CORRUPT_KEY', `${what}: this is a private key (${block.type}); pass the public key`);
  else throw new SignError('UNSUPPORTED_KEY', `${what}: unsupported PEM type ${JSON.stringify(block.type)}`);
  return verifierFromKey(key);
}

function parseDer(f: () => KeyObject, what: string): KeyObject {
  try {
    return f();
  } catch (e) {
    throw new SignError('CORRUPT_KEY', `${what}: cannot parse the key: ${(e as Error).message}`, { cause: e });
  }
}

/** `PUBLIC KEY` PEM of a key (PKIX / SubjectPublicKeyInfo). */
export function publicKeyPem(k: KeyObject): string {
  return encodePem('PUBLIC KEY', k.export({ format: 'der', type: 'spki' }));
}

/**
 * Encodes a private key as cosign does: PKCS#8 DER sealed with `password` in an
 * `ENCRYPTED SIGSTORE PRIVATE KEY` PEM.
 */
export function encryptPrivateKey(k: KeyObject, password: string): string {
  const der = k.export({ format: 'der', type: 'pkcs8' });
  return encodePem(SIGSTORE_PRIVATE_KEY_PEM, encryptEnvelope(der, password));
}

/** A new ECDSA P-256 key pair encoded like `cosign generate-key-pair` (`cosign.key` + `cosign.pub`). */
export function generateKeyPair(password: string): GeneratedKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKeyPem: encryptPrivateKey(privateKey, password), publicKeyPem: publicKeyPem(publicKey) };
}
