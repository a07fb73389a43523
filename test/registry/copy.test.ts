import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTransport } from '../../registry/copy.js';
import { tlsOptionsFor } from '../../registry/options.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('parseTransport', () => {
  it('parses docker:// and oci:DIR[:TAG], and leaves other names to the local store', () => {
    expect(parseTransport('docker://127.0.0.1:5000/a/b:v1')).toEqual({ kind: 'docker', ref: { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'v1' } });
    expect(parseTransport('oci:/srv/images/lay:v1')).toEqual({ kind: 'oci', dir: '/srv/images/lay', tag: 'v1' });
    expect(parseTransport('oci:/srv/images/lay')).toEqual({ kind: 'oci', dir: '/srv/images/lay' });
    expect(parseTransport('oci:rel/dir:latest')).toEqual({ kind: 'oci', dir: 'rel/dir', tag: 'latest' });
    expect(parseTransport('busybox:latest')).toBeUndefined();
    expect(() => parseTransport('oci:')).toThrow(/oci:DIR/);
  });
});

describe('tlsOptionsFor', () => {
  it('reads CAs and a client pair from --cert-dir, or from <root>/<host>/', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tsbuild-certs-'));
    dirs.push(d);
    await mkdir(join(d, 'reg.example:5000'));
    await writeFile(join(d, 'reg.example:5000', 'ca.crt'), 'CA1');
    await writeFile(join(d, 'reg.example:5000', 'client.cert'), 'CERT');
    await writeFile(join(d, 'reg.example:5000', 'client.key'), 'KEY');
    expect(await tlsOptionsFor('reg.example:5000', {}, [join(d, 'none'), d])).toEqual({ ca: ['CA1'], cert: 'CERT', key: 'KEY' });
    expect(await tlsOptionsFor('other:1', {}, [d])).toEqual({});
    expect(await tlsOptionsFor('any', { certDir: join(d, 'reg.example:5000'), tlsVerify: false }, [])).toEqual({ ca: ['CA1'], cert: 'CERT', key: 'KEY', verify: false });
  });
});
