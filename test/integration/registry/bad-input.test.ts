import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { needBuiltCli } from '../../helpers/capabilities.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { freePort, registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { runTsbuild, type RunResult } from '../../helpers/tools.js';
import { serve, type LocalServer } from '../../registry/serve.js';

const why = registrySkipReason() ?? needBuiltCli();
if (why) console.warn(`skip: ${why}`);

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Every file under a directory (relative paths, sorted): blobs, partial files, the image records. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe.skipIf(!!why)('bad input: clear errors naming the reference and status, non-zero exit, the store unchanged', () => {
  let open: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  let fake: LocalServer;
  let img: RandomImage;
  let root: string;
  let home: string;
  let before: string[];
  const dirs: string[] = [];
  const env = (): NodeJS.ProcessEnv => ({ HOME: home, DOCKER_CONFIG: join(home, '.docker'), XDG_RUNTIME_DIR: join(home, 'run'), REGISTRY_AUTH_FILE: '' });

  // The fake registry serves what a real one cannot: broken manifests and blobs.
  const layer = Buffer.from('the real layer bytes');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('x')] } }));
  const manifestOf = (layerDigest: string): Buffer =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.OciManifest,
        config: { mediaType: MediaTypes.OciConfig, digest: sha(config), size: config.length },
        layers: [{ mediaType: MediaTypes.OciLayerGzip, digest: layerDigest, size: layer.length }],
      }),
    );
  const good = manifestOf(sha(layer));

  beforeAll(async () => {
    [open, basic, token] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: 'htpasswd', users: [{ username: 'carol', password: 's3cret' }] }),
      startRegistry({ auth: 'token', users: [{ username: 'bob', password: 'builder', push: ['bob/own'] }], anonymousPull: true, tokenDenial: 'forbidden' }),
    ]);
    fake = await serve((req, _body, res) => {
      const u = req.url ?? '';
      if (u === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      const send = (status: number, body: Buffer | string, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (u === '/v2/bad/json/manifests/v1') return send(200, '{"schemaVersion": 2, "layers": [', { 'content-type': MediaTypes.OciManifest });
      if (u === '/v2/bad/huge/manifests/v1') {
        const pad = 'x'.repeat(5 << 20);
        return send(200, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, annotations: { pad } }), { 'content-type': MediaTypes.OciManifest });
      }
      if (u === '/v2/bad/chunked-huge/manifests/v1') {
        // no Content-Length: the limit must hold while reading
        res.writeHead(200, { 'content-type': MediaTypes.OciManifest });
        const chunk = Buffer.alloc(1 << 20, 0x20);
        let n = 0;
        const more = (): void => {
          while (n < 6) {
            n++;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        return more();
      }
      if (u === '/v2/bad/digest/manifests/v1') return send(200, good, { 'content-type': MediaTypes.OciManifest });
      if (u === `/v2/bad/digest/blobs/${sha(config)}`) return send(200, config);
      if (u === `/v2/bad/digest/blobs/${sha(layer)}`) return send(200, Buffer.from('not the layer bytes!'));
      send(404, JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }), { 'content-type': 'application/json' });
    });
    root = await mkdtemp(join(tmpdir(), 'tsbuild-root-'));
    home = await mkdtemp(join(tmpdir(), 'tsbuild-home-'));
    dirs.push(root, home);
    img = await randomImage({ dir: root, layers: 2, layerBytes: 20_000 });
    const store = await ImageStore.open(root);
    await store.tag('local/app:v1', img.manifest);
    before = await files(root);
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), basic?.stop(), token?.stop(), fake?.close()]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** Runs tsbuild, expects failure, and checks that the store is exactly as it was and fsck-clean. */
  async function fails(args: string[]): Promise<RunResult> {
    const r = await runTsbuild(args, { root, env: env(), timeout: 60_000 });
    expect(r.code, `tsbuild ${args.join(' ')} should fail\n${r.stderr}`).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(await files(root)).toEqual(before);
    const check = await runTsbuild(['fsck'], { root, env: env() });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    return r;
  }

  it.each([
    ['docker.io/Upper/case:v1', 'Upper/case'],
    ['127.0.0.1:5000/a//b:v1', 'a//b'],
    ['demo/app:bad tag', 'bad tag'],
    ['demo/app@sha256:1234', 'sha256:1234'],
    ['', ''],
  ])('pull of a malformed reference %j fails naming it', async (ref, named) => {
    const r = await fails(['pull', ref]);
    expect(r.stderr).toMatch(/reference/i);
    expect(r.stderr).toContain(named);
  });

  it('push to a malformed destination fails naming it', async () => {
    const r = await fails(['push', 'local/app:v1', `${open.host}/Bad_Upper/x:v1`]);
    expect(r.stderr).toContain('Bad_Upper');
    expect(r.stderr).toMatch(/reference/i);
  });

  it('an unknown tag is MANIFEST_UNKNOWN naming the reference', async () => {
    const r = await fails(['pull', `${open.host}/nothing/here:v9`]);
    expect(r.stderr).toContain(`pulling ${open.host}/nothing/here:v9`);
    expect(r.stderr).toMatch(/404 (MANIFEST_UNKNOWN|NAME_UNKNOWN)/);
  });

  it('401 without credentials, for pull and push', async () => {
    const p = await fails(['pull', `${basic.host}/priv/app:v1`]);
    expect(p.stderr).toContain(`pulling ${basic.host}/priv/app:v1`);
    expect(p.stderr).toContain('401 UNAUTHORIZED');
    const q = await fails(['push', 'local/app:v1', `${basic.host}/priv/app:v1`]);
    expect(q.stderr).toContain(`pushing ${basic.host}/priv/app:v1`);
    expect(q.stderr).toContain('401 UNAUTHORIZED');
  });

  it('a wrong password is 401 naming the reference (basic and token auth)', async () => {
    const p = await fails(['push', '--creds', 'carol:wrong', 'local/app:v1', `${basic.host}/priv/app:v1`]);
    expect(p.stderr).toContain(`pushing ${basic.host}/priv/app:v1`);
    expect(p.stderr).toContain('401 UNAUTHORIZED');
    const t = await fails(['push', '--creds', 'bob:wrong', 'local/app:v1', `${token.host}/bob/own:v1`]);
    expect(t.stderr).toContain(`${token.host}/bob/own:v1`);
    expect(t.stderr).toContain('401 UNAUTHORIZED');
  });

  it('403 from a token issuer denying push names the reference and DENIED', async () => {
    const r = await fails(['push', '--creds', 'bob:builder', 'local/app:v1', `${token.host}/alices/app:v1`]);
    expect(r.stderr).toContain(`pushing ${token.host}/alices/app:v1`);
    expect(r.stderr).toContain('403 DENIED');
    // the same user may push where the issuer allows it
    const ok = await runTsbuild(['push', '-q', '--creds', 'bob:builder', 'local/app:v1', `${token.host}/bob/own:v1`], { root, env: env() });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe(`${img.manifest.digest}\n`);
  });

  it('a registry that is down: connection refused, naming the registry', async () => {
    const port = await freePort();
    const r = await fails(['pull', `127.0.0.1:${port}/down/app:v1`]);
    expect(r.stderr).toContain(`pulling 127.0.0.1:${port}/down/app:v1: cannot reach the registry 127.0.0.1:${port} (connection refused, ECONNREFUSED)`);
    const q = await fails(['push', 'local/app:v1', `127.0.0.1:${port}/down/app:v1`]);
    expect(q.stderr).toContain(`pushing 127.0.0.1:${port}/down/app:v1: cannot reach the registry 127.0.0.1:${port} (connection refused, ECONNREFUSED)`);
  });

  it('invalid manifest JSON', async () => {
    const r = await fails(['pull', `${fake.host}/bad/json:v1`]);
    expect(r.stderr).toContain(`pulling ${fake.host}/bad/json:v1`);
    expect(r.stderr).toMatch(/not JSON|INVALID_MANIFEST/);
  });

  it('a manifest over the 4 MiB limit, with and without Content-Length', async () => {
    for (const repo of ['huge', 'chunked-huge']) {
      const r = await fails(['pull', `${fake.host}/bad/${repo}:v1`]);
      expect(r.stderr).toContain(`pulling ${fake.host}/bad/${repo}:v1`);
      expect(r.stderr).toMatch(/exceeds the 4194304-byte limit/);
    }
  });

  it('a blob whose bytes do not match its digest is rejected and nothing is kept', async () => {
    const r = await fails(['pull', `${fake.host}/bad/digest:v1`]);
    expect(r.stderr).toContain(`${fake.host}/bad/digest:v1`);
    expect(r.stderr).toContain(sha(layer));
    expect(r.stderr).toMatch(/digest/i);
  });
});
