import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { sha256 } from '../../../src/oci/digest.js';
import { parseReference } from '../../../src/oci/reference.js';
import { copy } from '../../../registry/copy.js';
import { pull } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { needTool } from '../../helpers/capabilities.js';
import { randomImage, type RandomImage } from '../../helpers/random-image.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const exec = promisify(execFile);
const base = registrySkipReason();
const noSkopeo = base ?? needTool('skopeo');
const noPodman = base ?? needTool('podman');
for (const w of new Set([noSkopeo, noPodman])) if (w) console.warn(`skip: ${w}`);

describe.skipIf(!!base)('interop with skopeo and podman', () => {
  let reg: TestRegistry;
  let img: RandomImage;
  const dirs: string[] = [];
  const temp = async (p: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), p));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    reg = await startRegistry();
    img = await randomImage({ layers: 3, layerBytes: 100_000, tag: 'v1' });
  });
  afterAll(async () => {
    await reg?.stop();
    await img?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it.skipIf(!!noSkopeo)('skopeo pulls what tsbuild pushed, with the same manifest digest', async () => {
    const d = await push(parseReference(`${reg.host}/interop/from-tsbuild:v1`), { store: img.store, descriptor: img.manifest });
    const out = await temp('tsbuild-skopeo-');
    await exec('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/interop/from-tsbuild:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([d.digest]);
    expect(d.digest).toBe(img.manifest.digest);
    const raw = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/from-tsbuild:v1`]);
    expect(sha256(raw.stdout)).toBe(img.manifest.digest);
  });

  it.skipIf(!!noSkopeo)('tsbuild pulls what skopeo pushed from an OCI layout, with identical digests', async () => {
    const other = await randomImage({ layers: 2, layerBytes: 30_000, tag: 'sk' });
    try {
      await exec('skopeo', ['copy', '--dest-tls-verify=false', `oci:${other.dir}:sk`, `docker://${reg.host}/interop/from-skopeo:v1`]);
      const raw = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/from-skopeo:v1`]);
      const store = new FileContentStore(await temp('tsbuild-store-'));
      const d = await pull(parseReference(`${reg.host}/interop/from-skopeo:v1`), store);
      expect(d.digest).toBe(sha256(raw.stdout));
      expect(d.digest).toBe(other.manifest.digest);
      for (const l of other.layers) expect(await store.read(l.digest)).toEqual(await other.store.read(l.digest));
    } finally {
      await other.cleanup();
    }
  });

  it.skipIf(!!noSkopeo)('copies registry → OCI layout that skopeo reads back unchanged', async () => {
    await push(parseReference(`${reg.host}/interop/layout:v1`), { store: img.store, descriptor: img.manifest });
    const dir = await temp('tsbuild-layout-');
    const d = await copy({ kind: 'docker', ref: parseReference(`${reg.host}/interop/layout:v1`) }, { kind: 'oci', dir, tag: 'v1' });
    expect(d.digest).toBe(img.manifest.digest);
    // skopeo reads the layout tsbuild wrote and pushes it elsewhere unchanged
    await exec('skopeo', ['copy', '--dest-tls-verify=false', `oci:${dir}:v1`, `docker://${reg.host}/interop/layout-back:v1`]);
    const raw = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/layout-back:v1`]);
    expect(sha256(raw.stdout)).toBe(img.manifest.digest);
  });

  it.skipIf(!!noPodman)('podman pulls what tsbuild pushed', async () => {
    await push(parseReference(`${reg.host}/interop/podman:v1`), { store: img.store, descriptor: img.manifest });
    const root = await temp('tsbuild-podman-root-');
    const runroot = await temp('tsbuild-podman-run-');
    const state = await temp('tsbuild-podman-tmp-');
    // everything podman keeps goes into temp dirs removed afterwards
    const podman = ['--root', root, '--runroot', runroot, '--tmpdir', state, '--events-backend', 'none', '--storage-driver', 'vfs'];
    try {
      await exec('podman', [...podman, 'pull', '--tls-verify=false', `${reg.host}/interop/podman:v1`], { timeout: 60_000 });
      const { stdout } = await exec('podman', [...podman, 'image', 'inspect', '--format', '{{.Digest}}', `${reg.host}/interop/podman:v1`]);
      expect(stdout.trim()).toBe(img.manifest.digest);
    } finally {
      await exec('podman', [...podman, 'rmi', '-a', '-f']).catch(() => undefined);
    }
  });
});
