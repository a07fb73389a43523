import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  COSIGN_PRIVATE_KEY_PEM,
  SIGSTORE_PRIVATE_KEY_PEM,
  decryptEnvelope,
  encodePem,
  encryptEnvelope,
  generateKeyPair,
  readPrivateKey,
  readPublicKey,
} from '../../../src/sign/keys.js';
import { SignError } from '../../../src/sign/errors.js';
import { goTool } from '../../helpers/go-tools.js';
import { makeTempDir, removeTempDirs, run } from '../../helpers/tools.js';
import { needTool } from '../../helpers/capabilities.js';

afterAll(removeTempDirs);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SignError);
    return (e as SignError).code;
  }
  throw new Error('expected a SignError');
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
}

// Vectors from go-securesystemslib encrypted/encrypted_test.go (password "supersecret").
const GO_DECRYPT_VECTOR = `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}`;
const GO_MARSHAL_VECTORS = [
  `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}`,
  `{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}`,
];
const GO_BAD_PARAMS = `{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}`;

describe('encrypted envelope (go-securesystemslib)', () => {
  it('decrypts the upstream test vectors', () => {
    expect(decryptEnvelope(Buffer.from(GO_DECRYPT_VECTOR), 'supersecret').toString()).toBe('reallyimportant');
    for (const v of GO_MARSHAL_VECTORS) {
      // encrypted.Marshal JSON-encodes the plaintext ([]byte → base64 string) before sealing it.
      const inner = JSON.parse(decryptEnvelope(Buffer.from(v), 'supersecret').toString()) as string;
      expect(Buffer.from(inner, 'base64').toString()).toBe('reallyimportant');
    }
  });

  it('refuses a wrong password and unsupported parameters with typed errors', async () => {
    expect(await code(Promise.resolve().then(() => decryptEnvelope(Buffer.from(GO_DECRYPT_VECTOR), 'nope')))).toBe('WRONG_PASSWORD');
    expect(await code(Promise.resolve().then(() => decryptEnvelope(Buffer.from(GO_BAD_PARAMS), 'supersecret')))).toBe('UNSUPPORTED_KEY');
    expect(await code(Promise.resolve().then(() => decryptEnvelope(Buffer.from('{not json'), 'x')))).toBe('CORRUPT_KEY');
  });

  it('writes the envelope fields in go-securesystemslib order with the standard scrypt parameters', () => {
    const env = encryptEnvelope(Buffer.from('hello'), 'pw').toString();
    expect(env).toMatch(/^\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[A-Za-z0-9+/=]{44}"\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/=]{32}"\},"ciphertext":"[A-Za-z0-9+/=]+"\}$/);
    expect(decryptEnvelope(Buffer.from(env), 'pw').toString()).toBe('hello');
  });
});

describe('cosign key files', () => {
  it('round-trips a generated key pair: sign with cosign.key, verify with cosign.pub', async () => {
    const pair = generateKeyPair('s3cret');
    expect(pair.privateKeyPem.startsWith(`-----BEGIN ${SIGSTORE_PRIVATE_KEY_PEM}-----\n`)).toBe(true);
    expect(pair.publicKeyPem.startsWith('-----BEGIN PUBLIC KEY-----\n')).toBe(true);
    const signer = await readPrivateKey(pair.privateKeyPem, () => 's3cret');
    const verifier = readPublicKey(pair.publicKeyPem);
    const data = Buffer.from('payload');
    const sig = await signer.sign(data);
    expect(sig[0]).toBe(0x30); // ASN.1 SEQUENCE (DER), as cosign writes
    expect(verifier.verify(data, sig)).toBe(true);
    expect(verifier.verify(Buffer.from('payloaD'), sig)).toBe(false);
    expect(readPublicKey(generateKeyPair('x').publicKeyPem).verify(data, sig)).toBe(false);
    // The plaintext is the PKCS#8 DER of a P-256 key.
    const der = decryptEnvelope(pemBody(pair.privateKeyPem), 's3cret');
    const k = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    expect(k.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('asks for the password only for encrypted keys and reports a wrong one', async () => {
    const pair = generateKeyPair('right');
    expect(await code(readPrivateKey(pair.privateKeyPem, () => 'wrong'))).toBe('WRONG_PASSWORD');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    let asked = 0;
    const s = await readPrivateKey(privateKey.export({ format: 'pem', type: 'sec1' }) as string, () => {
      asked++;
      return '';
    });
    expect(asked).toBe(0);
    expect(s.publicKey.asymmetricKeyType).toBe('ec');
    await readPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, () => '');
  });

  it('reads the legacy ENCRYPTED COSIGN PRIVATE KEY type', async () => {
    const pair = generateKeyPair('pw');
    const legacy = encodePem(COSIGN_PRIVATE_KEY_PEM, pemBody(pair.privateKeyPem));
    const s = await readPrivateKey(legacy, () => 'pw');
    expect(readPublicKey(pair.publicKeyPem).verify(Buffer.from('x'), await s.sign(Buffer.from('x')))).toBe(true);
  });

  it('refuses corrupt and unsupported keys with typed errors', async () => {
    const pair = generateKeyPair('pw');
    expect(await code(readPrivateKey('not a key', () => 'pw'))).toBe('CORRUPT_KEY');
    const body = pemBody(pair.privateKeyPem);
    const flipped = Buffer.from(body);
    flipped[flipped.length - 10] ^= 0x01; // inside the base64 ciphertext: the MAC fails
    expect(await code(readPrivateKey(encodePem(SIGSTORE_PRIVATE_KEY_PEM, flipped), () => 'pw'))).toMatch(/WRONG_PASSWORD|CORRUPT_KEY/);
    expect(await code(readPrivateKey(encodePem(SIGSTORE_PRIVATE_KEY_PEM, body.subarray(0, 40)), () => 'pw'))).toBe('CORRUPT_KEY');
    expect(await code(readPrivateKey(encodePem('EC PRIVATE KEY', Buffer.from('garbage')), () => ''))).toBe('CORRUPT_KEY');
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    expect(await code(readPrivateKey(k1.export({ format: 'pem', type: 'pkcs8' }) as string, () => ''))).toBe('UNSUPPORTED_KEY');
    const x = generateKeyPairSync('x25519').privateKey;
    expect(await code(readPrivateKey(x.export({ format: 'pem', type: 'pkcs8' }) as string, () => ''))).toBe('UNSUPPORTED_KEY');
    expect(await code(readPrivateKey(encodePem('DSA PRIVATE KEY', Buffer.from('x')), () => ''))).toBe('UNSUPPORTED_KEY');
    expect(await code(Promise.resolve().then(() => readPublicKey(pair.privateKeyPem)))).toBe('CORRUPT_KEY');
  });

  it('produces signatures openssl verifies with cosign.pub', async (ctx) => {
    const why = needTool('openssl');
    if (why) {
      console.warn(`skip: ${why}`);
      ctx.skip();
    }
    const dir = await makeTempDir();
    const pair = generateKeyPair('pw');
    const s = await readPrivateKey(pair.privateKeyPem, () => 'pw');
    const data = Buffer.from('{"critical":{}}');
    await writeFile(join(dir, 'data'), data);
    await writeFile(join(dir, 'sig'), await s.sign(data));
    await writeFile(join(dir, 'pub'), pair.publicKeyPem);
    const r = await run('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub'), '-signature', join(dir, 'sig'), join(dir, 'data')]);
    expect(r.stdout.trim()).toBe('Verified OK');
  });
});

describe('interop with the real cosign', async () => {
  const cosign = await goTool('cosign');
  it.skipIf(!cosign.path)('reads a key pair made by cosign generate-key-pair, and cosign reads ours', async () => {
    const dir = await makeTempDir();
    const env = { COSIGN_PASSWORD: 'interop-pw' };
    const r = await run(cosign.path!, ['generate-key-pair'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const keyPem = await readFile(join(dir, 'cosign.key'), 'utf8');
    expect(keyPem).toContain(`BEGIN ${SIGSTORE_PRIVATE_KEY_PEM}`);
    const s = await readPrivateKey(keyPem, () => 'interop-pw');
    const v = readPublicKey(await readFile(join(dir, 'cosign.pub'), 'utf8'));
    expect(v.verify(Buffer.from('m'), await s.sign(Buffer.from('m')))).toBe(true);
    expect(await code(readPrivateKey(keyPem, () => 'other'))).toBe('WRONG_PASSWORD');

    // cosign reads a tsbuild key: `cosign public-key --key` decrypts it and prints the same public key.
    const ours = generateKeyPair('ours-pw');
    await writeFile(join(dir, 'ours.key'), ours.privateKeyPem);
    const pub = await run(cosign.path!, ['public-key', '--key', join(dir, 'ours.key')], { env: { COSIGN_PASSWORD: 'ours-pw' } });
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.stdout.trim()).toBe(ours.publicKeyPem.trim());
    const bad = await run(cosign.path!, ['public-key', '--key', join(dir, 'ours.key')], { env: { COSIGN_PASSWORD: 'wrong' } });
    expect(bad.code).not.toBe(0);
  });
});
