import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { runTsbuild, tsbuildOk } from '../../helpers/tools.js';

const why = registrySkipReason();
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('tsbuild pull/push/login/logout/copy CLI', () => {
  let reg: TestRegistry;
  let authReg: TestRegistry;
  let img: RandomImage;
  let root: string;
  let home: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    reg = await startRegistry();
    authReg = await startRegistry({ auth: 'htpasswd', users: [{ username: 'carol', password: 's3cret' }] });
    root = await mkdtemp(join(tmpdir(), 'tsbuild-root-'));
    home = await mkdtemp(join(tmpdir(), 'tsbuild-home-'));
    dirs.push(root, home);
    // the image's blobs go straight into the store root; then it gets a name
    img = await randomImage({ dir: root, layers: 2, layerBytes: 30_000 });
    const store = await ImageStore.open(root);
    await store.tag('local/app:v1', img.manifest);
  });
  afterAll(async () => {
    await reg?.stop();
    await authReg?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, HOME: home, DOCKER_CONFIG: join(home, '.docker'), XDG_RUNTIME_DIR: join(home, 'run'), REGISTRY_AUTH_FILE: '' });

  it('push prints the digest on stdout; pull into another store tags it', async () => {
    const r = await tsbuildOk(['push', '-q', 'local/app:v1', `${reg.host}/cli/app:v1`], { root, env: env() });
    expect(r.stdout).toBe(`${img.manifest.digest}\n`);
    const other = await mkdtemp(join(tmpdir(), 'tsbuild-root-'));
    dirs.push(other);
    const p = await tsbuildOk(['pull', `${reg.host}/cli/app:v1`], { root: other, env: env() });
    expect(p.stdout).toBe(`${reg.host}/cli/app:v1\n`);
    expect(p.stderr).toContain(`digest: ${img.manifest.digest}`);
    const rec = await (await ImageStore.open(other)).resolve(`${reg.host}/cli/app:v1`);
    expect(rec.descriptor.digest).toBe(img.manifest.digest);
  });

  it('progress: start and done lines with sizes when stderr is not a terminal; -q prints only the result', async () => {
    const pushed = await tsbuildOk(['push', 'local/app:v1', `${reg.host}/cli/progress:v1`], { root, env: env() });
    expect(pushed.stdout).toBe(`${img.manifest.digest}\n`);
    expect(pushed.stderr).toContain(`digest: ${img.manifest.digest}`);
    const other = await mkdtemp(join(tmpdir(), 'tsbuild-root-'));
    dirs.push(other);
    const p = await tsbuildOk(['pull', `${reg.host}/cli/progress:v1`], { root: other, env: env() });
    for (const l of img.layers) {
      const id = l.digest.slice(7, 19);
      expect(p.stderr).toMatch(new RegExp(`^${id}: downloading ${(l.size / 1024).toFixed(1)} KiB$`, 'm'));
      expect(p.stderr).toMatch(new RegExp(`^${id}: done ${(l.size / 1024).toFixed(1)} KiB in \\d+\\.\\d+ s \\([\\d.]+ [KMG]?i?B/s\\)$`, 'm'));
    }
    expect(p.stderr).not.toMatch(/\x1b\[/);
    // pulled again: everything is already there
    const again = await tsbuildOk(['pull', `${reg.host}/cli/progress:v1`], { root: other, env: env() });
    for (const l of img.layers) expect(again.stderr).toContain(`${l.digest.slice(7, 19)}: already exists`);
    expect(again.stderr).not.toContain('downloading');

    const third = await mkdtemp(join(tmpdir(), 'tsbuild-root-'));
    dirs.push(third);
    const q = await tsbuildOk(['pull', '-q', `${reg.host}/cli/progress:v1`], { root: third, env: env() });
    expect(q.stdout).toBe(`${reg.host}/cli/progress:v1\n`);
    expect(q.stderr).toBe('');
    const qp = await tsbuildOk(['push', '-q', 'local/app:v1', `${reg.host}/cli/progress:v2`], { root, env: env() });
    expect(qp.stdout).toBe(`${img.manifest.digest}\n`);
    expect(qp.stderr).toBe('');
  });

  it('login checks the password, writes config.json 0600, and logout removes it', async () => {
    const bad = await runTsbuild(['login', '-u', 'carol', '--password-stdin', authReg.host], { root, env: env(), input: 'wrong\n' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`logging in to ${authReg.host}`);
    expect(bad.stderr).toContain('401 UNAUTHORIZED');

    const ok = await tsbuildOk(['login', '-u', 'carol', '--password-stdin', authReg.host], { root, env: env(), input: 's3cret\n' });
    expect(ok.stdout).toBe('Login Succeeded\n');
    const cfgPath = join(home, '.docker', 'config.json');
    expect((await stat(cfgPath)).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(cfg.auths[authReg.host]!.auth, 'base64').toString()).toBe('carol:s3cret');

    // the stored credentials are used by push
    const r = await tsbuildOk(['push', '-q', 'local/app:v1', `${authReg.host}/cli/app:v1`], { root, env: env() });
    expect(r.stdout.trim()).toBe(img.manifest.digest);

    await tsbuildOk(['logout', authReg.host], { root, env: env() });
    const after = JSON.parse(await readFile(cfgPath, 'utf8')) as { auths: Record<string, unknown> };
    expect(after.auths[authReg.host]).toBeUndefined();
    const denied = await runTsbuild(['push', '-q', 'local/app:v1', `${authReg.host}/cli/app:v2`], { root, env: env() });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain(`pushing ${authReg.host}/cli/app:v2`);
    expect(denied.stderr).toContain('(401 UNAUTHORIZED)');
  });

  it('copy docker:// → oci: → local name', async () => {
    const layout = await mkdtemp(join(tmpdir(), 'tsbuild-layout-'));
    dirs.push(layout);
    await tsbuildOk(['push', '-q', 'local/app:v1', `${reg.host}/cli/copy:v1`], { root, env: env() });
    const c1 = await tsbuildOk(['copy', '-q', `docker://${reg.host}/cli/copy:v1`, `oci:${layout}:v1`], { root, env: env() });
    expect(c1.stdout.trim()).toBe(img.manifest.digest);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    expect(index.manifests).toEqual([expect.objectContaining({ digest: img.manifest.digest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } })]);
    const c2 = await tsbuildOk(['copy', '-q', `oci:${layout}:v1`, 'copied/app:v1'], { root, env: env() });
    expect(c2.stdout.trim()).toBe(img.manifest.digest);
    expect((await (await ImageStore.open(root)).resolve('copied/app:v1')).descriptor.digest).toBe(img.manifest.digest);
  });

  it('talks TLS with --cert-dir, or with --tls-verify=false, and refuses an unknown CA', async () => {
    const tls = await startRegistry({ tls: true });
    try {
      const certDir = await mkdtemp(join(tmpdir(), 'tsbuild-certs-'));
      dirs.push(certDir);
      await writeFile(join(certDir, 'ca.crt'), tls.caCert!);
      const r = await tsbuildOk(['push', '-q', '--cert-dir', certDir, 'local/app:v1', `${tls.host}/cli/tls:v1`], { root, env: env() });
      expect(r.stdout.trim()).toBe(img.manifest.digest);
      const bad = await runTsbuild(['pull', '-q', `${tls.host}/cli/tls:v1`], { root, env: env() });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/certificate/);
      const ok = await tsbuildOk(['pull', '-q', '--tls-verify=false', `${tls.host}/cli/tls:v1`], { root, env: env() });
      expect(ok.stdout).toBe(`${tls.host}/cli/tls:v1\n`);
    } finally {
      await tls.stop();
    }
  });
});
