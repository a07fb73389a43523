/**
 * `tsbuild build --push` and `--output type=registry`: the built image goes to a loopback
 * registry through the registry client, and the peers read it back: skopeo inspects it, podman
 * and (where a private dockerd starts) docker pull and run it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/oci/digest.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needPodmanWorks, needTool } from '../../helpers/capabilities.js';
import { dockerdSkipReason, startDockerd } from '../../helpers/dockerd.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { run, runTsbuild, tsbuildOk } from '../../helpers/tools.js';
import { buildUnavailable } from './harness.js';

const why = firstReason(buildUnavailable(), needBuiltCli(), registrySkipReason());
if (why) console.warn(`skip: ${why}`);
const noSkopeo = why ?? needTool('skopeo');
const noPodman = why ?? needPodmanWorks();
const noDocker = why ?? dockerdSkipReason();
for (const w of new Set([noSkopeo, noPodman, noDocker])) if (w && w !== why) console.warn(`skip: ${w}`);

const temps: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

const BASE = 'localhost/test/busybox:latest';
const DOCKERFILE = `FROM ${BASE}\nRUN echo "built by tsbuild" > /hello\nCMD ["cat", "/hello"]\n`;

describe.skipIf(!!why)('build --push', () => {
  let reg: TestRegistry;
  let root = '';
  let ctx = '';
  let ref = '';
  let digest = '';

  beforeAll(async () => {
    if (why) return;
    reg = await startRegistry();
    root = tmp('tsbuild-publish-');
    await tsbuildOk(['import', await busyboxRootfs(), BASE, '-c', 'CMD ["sh"]'], { root });
    ctx = tmp('tsbuild-publish-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
    ref = `${reg.host}/publish/app:v1`;
    const r = await tsbuildOk(['build', '--progress', 'plain', '--push', '-t', ref, '-t', `${reg.host}/publish/app:v2`, ctx], { root, timeout: 300_000 });
    digest = r.stdout.trim();
  }, 360_000);

  afterAll(async () => {
    await reg?.stop();
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  });

  it('pushes every -t name and prints the pushed digest on stdout, like tsbuild push', async () => {
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // the registry serves exactly the manifest whose digest was printed, under both tags
    for (const tag of ['v1', 'v2']) {
      const res = await fetch(`${reg.url}/v2/publish/app/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(res.status).toBe(200);
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(digest);
    }
    // the local store has the image under its names too
    const local = await tsbuildOk(['images', '--format', 'json'], { root });
    expect(local.stdout).toContain(digest);
  });

  it.skipIf(!!noSkopeo)('skopeo inspects the pushed image: same digest, the config the Dockerfile set', async () => {
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(sha256(raw.stdout)).toBe(digest);
    const cfg = await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${ref}`]);
    expect(cfg.code, cfg.stderr).toBe(0);
    expect((JSON.parse(cfg.stdout) as { config: { Cmd: string[] } }).config.Cmd).toEqual(['cat', '/hello']);
  });

  it.skipIf(!!noPodman)('podman pulls and runs the pushed image', async () => {
    const p = tmp('tsbuild-publish-podman-');
    // everything podman keeps goes into temp dirs removed afterwards
    const podman = ['--root', join(p, 'root'), '--runroot', join(p, 'run'), '--tmpdir', join(p, 'tmp'), '--events-backend', 'none', '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs'];
    try {
      const pull = await run('podman', [...podman, 'pull', '--tls-verify=false', ref], { timeout: 120_000 });
      expect(pull.code, pull.stderr).toBe(0);
      const d = await run('podman', [...podman, 'image', 'inspect', '--format', '{{.Digest}}', ref]);
      expect(d.stdout.trim()).toBe(digest);
      const r = await run('podman', [...podman, 'run', '--rm', '--network', 'none', ref], { timeout: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('built by tsbuild\n');
    } finally {
      await run('podman', [...podman, 'rmi', '-a', '-f']);
      await run('sh', ['-c', `grep -o ' ${p}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]);
    }
  });

  it.skipIf(!!noDocker)('docker pulls and runs the pushed image', async () => {
    const dockerd = await startDockerd();
    try {
      const pull = await dockerd.docker(['pull', ref], { timeout: 120_000 });
      expect(pull.code, pull.stderr).toBe(0);
      expect(pull.stdout).toContain(`Digest: ${digest}`);
      const r = await dockerd.docker(['run', '--rm', '--network', 'none', ref], { timeout: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('built by tsbuild\n');
    } finally {
      await dockerd.stop();
    }
  }, 240_000);

  it('--output type=registry,name=… and type=image,push=true push the same build (no -t needed)', async () => {
    const a = await tsbuildOk(['build', '-q', '--output', `type=registry,name=${reg.host}/publish/out:a`, ctx], { root, timeout: 300_000 });
    expect(a.stdout).toBe(`${digest}\n`);
    const b = await tsbuildOk(['build', '-q', '--output', `type=image,"name=${reg.host}/publish/out:b,${reg.host}/publish/other:b",push=true`, ctx], { root, timeout: 300_000 });
    expect(b.stdout).toBe(`${digest}\n`);
    for (const path of ['publish/out/manifests/a', 'publish/out/manifests/b', 'publish/other/manifests/b']) {
      const res = await fetch(`${reg.url}/v2/${path}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(res.headers.get('docker-content-digest'), path).toBe(digest);
    }
  }, 600_000);

  it('refuses flag combinations that cannot publish, before building; a dead registry fails naming the ref', async () => {
    const cases: [string[], RegExp][] = [
      [['--push'], /--push needs a name/],
      [['--sign', '--key', 'x.key'], /need --push/],
      [['--push', '-t', ref, '--output', 'type=oci,dest=out.tar'], /--push cannot be combined with --output/],
      [['--push', '-t', ref, '--sbom'], /add --sign --key/],
      [['--push', '-t', ref, '--sign'], /--sign needs --key/],
      [['--output', 'type=registry,name=x/y:z,compression=zstd'], /unsupported option compression/],
      [['--push', '-t', `${ref}@sha256:${'0'.repeat(64)}`], /digest reference/],
    ];
    for (const [flags, msg] of cases) {
      const r = await runTsbuild(['build', ...flags, ctx], { root });
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(msg);
    }
    const dead = tmp('tsbuild-publish-dead-');
    const down = await startRegistry();
    const gone = `${down.host}/publish/app:v1`;
    await down.stop();
    const r = await runTsbuild(['build', '-q', '--push', '-t', gone, ctx], { root, cwd: dead, timeout: 300_000 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(down.host);
  }, 600_000);
});
