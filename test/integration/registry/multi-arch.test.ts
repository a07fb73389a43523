import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/oci/digest.js';
import { hostPlatform, type Platform } from '../../../src/oci/platform.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { needBuiltCli, needTool } from '../../helpers/capabilities.js';
import { randomIndex, type RandomIndex } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { runTsbuild, tsbuildOk } from '../../helpers/tools.js';

const exec = promisify(execFile);
const why = registrySkipReason() ?? needTool('skopeo') ?? needBuiltCli();
if (why) console.warn(`skip: ${why}`);

// Two platforms: the host's and one other, so that "the host platform" is a real choice.
const host = hostPlatform();
const other: Platform = host.architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64', variant: 'v8' };

describe.skipIf(!!why)('multi-arch: an index pushed by skopeo, pulled and pushed by tsbuild', () => {
  let reg: TestRegistry;
  let idx: RandomIndex;
  const dirs: string[] = [];
  const temp = async (p: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), p));
    dirs.push(d);
    return d;
  };
  const env = { REGISTRY_AUTH_FILE: join(tmpdir(), 'tsbuild-no-such-auth.json'), DOCKER_CONFIG: join(tmpdir(), 'tsbuild-no-such-docker-config') };
  const inspectRaw = async (ref: string): Promise<string> => (await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout;
  const hostImage = () => idx.images[0]!.image;
  const otherImage = () => idx.images[1]!.image;

  beforeAll(async () => {
    reg = await startRegistry();
    idx = await randomIndex([host, other], { layers: 2, layerBytes: 40_000, tag: 'multi' });
    await exec('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${idx.dir}:multi`, `docker://${reg.host}/multi/app:v1`]);
  });
  afterAll(async () => {
    await reg?.stop();
    await idx?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('skopeo pushed the index unchanged', async () => {
    expect(sha256(await inspectRaw(`${reg.host}/multi/app:v1`))).toBe(idx.index.digest);
  });

  it('pull selects the host platform; the index is the tagged digest', async () => {
    const root = await temp('tsbuild-root-');
    const r = await tsbuildOk(['pull', `${reg.host}/multi/app:v1`], { root, env });
    expect(r.stdout).toBe(`${reg.host}/multi/app:v1\n`);
    expect(r.stderr).toContain(`digest: ${idx.index.digest}`);
    const store = await ImageStore.open(root);
    expect((await store.resolve(`${reg.host}/multi/app:v1`)).descriptor.digest).toBe(idx.index.digest);
    const { image } = await store.imageFor(`${reg.host}/multi/app:v1`);
    expect(await image.digest()).toBe(hostImage().manifest.digest);
    for (const l of hostImage().layers) expect(await store.content.read(l.digest)).toEqual(await hostImage().store.read(l.digest));
    for (const l of otherImage().layers) expect(await store.content.has(l.digest)).toBe(false);
    expect(await store.content.has(otherImage().manifest.digest)).toBe(false);
  });

  it('pull --platform selects the other platform with identical digests', async () => {
    const root = await temp('tsbuild-root-');
    const plat = [other.os, other.architecture].join('/');
    const r = await tsbuildOk(['pull', '--platform', plat, `${reg.host}/multi/app:v1`], { root, env });
    expect(r.stderr).toContain(`digest: ${idx.index.digest}`);
    const store = await ImageStore.open(root);
    const { image } = await store.imageFor(`${reg.host}/multi/app:v1`, other);
    expect(await image.digest()).toBe(otherImage().manifest.digest);
    expect(await image.rawConfig()).toEqual(await otherImage().store.read(otherImage().config.digest));
    for (const l of otherImage().layers) expect(await store.content.read(l.digest)).toEqual(await otherImage().store.read(l.digest));
    for (const l of hostImage().layers) expect(await store.content.has(l.digest)).toBe(false);
  });

  it('pull of a platform the index lacks fails naming the platforms it has; the store stays empty', async () => {
    const root = await temp('tsbuild-root-');
    const r = await runTsbuild(['pull', '--platform', 'linux/s390x', `${reg.host}/multi/app:v1`], { root, env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${reg.host}/multi/app`);
    expect(r.stderr).toContain('linux/s390x');
    expect(r.stderr).toContain(`linux/${other.architecture}`);
    const store = await ImageStore.open(root);
    expect(await store.list()).toEqual([]);
  });

  it('pull --all-platforms stores every child; push of the stored index round-trips through skopeo', async () => {
    const root = await temp('tsbuild-root-');
    await tsbuildOk(['pull', '-q', '--all-platforms', `${reg.host}/multi/app:v1`], { root, env });
    const store = await ImageStore.open(root);
    for (const { image } of idx.images) {
      expect(await store.content.has(image.manifest.digest)).toBe(true);
      for (const l of image.layers) expect(await store.content.has(l.digest)).toBe(true);
    }
    expect((await store.fsck()).bad).toEqual([]);

    const p = await tsbuildOk(['push', '-q', `${reg.host}/multi/app:v1`, `${reg.host}/multi/copy:v2`], { root, env });
    expect(p.stdout).toBe(`${idx.index.digest}\n`);
    expect(sha256(await inspectRaw(`${reg.host}/multi/copy:v2`))).toBe(idx.index.digest);
    // skopeo reads every platform back from the index tsbuild pushed
    const out = await temp('tsbuild-oci-');
    await exec('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi/copy:v2`, `oci:${out}:v2`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([idx.index.digest]);
    for (const { image } of idx.images) {
      for (const l of image.layers) expect(await readFile(join(out, 'blobs', 'sha256', l.digest.slice(7)))).toEqual(await image.store.read(l.digest));
    }
    // and per platform, the child manifests tsbuild pushed by digest
    const child = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi/copy@${otherImage().manifest.digest}`]);
    expect(sha256(child.stdout)).toBe(otherImage().manifest.digest);
  });

  it('push of an index whose children were not all pulled fails naming the missing child; nothing is tagged', async () => {
    const root = await temp('tsbuild-root-');
    await tsbuildOk(['pull', '-q', `${reg.host}/multi/app:v1`], { root, env });
    const r = await runTsbuild(['push', '-q', `${reg.host}/multi/app:v1`, `${reg.host}/multi/partial:v1`], { root, env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${reg.host}/multi/partial:v1`);
    expect(r.stderr).toContain(otherImage().manifest.digest);
    const tags = await exec('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/multi/partial`]).then(
      (x) => (JSON.parse(x.stdout) as { Tags: string[] }).Tags,
      () => [] as string[],
    );
    expect(tags).toEqual([]);
    // back to the repository it came from, the missing child is there: the push succeeds
    const back = await tsbuildOk(['push', '-q', `${reg.host}/multi/app:v1`, `${reg.host}/multi/app:v3`], { root, env });
    expect(back.stdout).toBe(`${idx.index.digest}\n`);
  });
});
