import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { sha256 } from '../../../src/oci/digest.js';
import { emptyImage } from '../../../src/oci/empty.js';
import { layerCore } from '../../../src/oci/layout/from-content.js';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { appendLayers } from '../../../src/oci/mutate.js';
import { layerFromCore } from '../../../src/oci/partial.js';
import { parseReference } from '../../../src/oci/reference.js';
import { tarDirectory, writeLayer } from '../../../src/oci/tar/index.js';
import { validateImage } from '../../../src/oci/validate.js';
import type { Image } from '../../../src/oci/image.js';
import { pull } from '../../../registry/remote/pull.js';
import { push } from '../../../registry/remote/push.js';
import { remoteImage } from '../../../registry/remote/image.js';
import { needTool } from '../../helpers/capabilities.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const exec = promisify(execFile);
const why = registrySkipReason();
if (why) console.warn(`skip: ${why}`);
const noSkopeo = needTool('skopeo');
if (noSkopeo) console.warn(`skip: ${noSkopeo}`);

describe.skipIf(!!why)('pushing in-memory images (mutate + writeLayer)', () => {
  let reg: TestRegistry;
  const dirs: string[] = [];
  const temp = async (p: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), p));
    dirs.push(d);
    return d;
  };
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function build(compression: 'gzip' | 'zstd'): Promise<Image> {
    const src = await temp('tsbuild-src-');
    await mkdir(join(src, 'etc'));
    await writeFile(join(src, 'etc', 'hello'), `hello ${compression}\n`);
    const store = new FileContentStore(await temp('tsbuild-store-'));
    const w = await writeLayer(tarDirectory(src, { sourceDateEpoch: 0 }), store, { compression });
    const layer = layerFromCore(layerCore(store, w.descriptor), w.diffId);
    return appendLayers(emptyImage(), { layer, history: { created_by: 'test' } });
  }

  for (const compression of ['gzip', 'zstd'] as const) {
    it(`pushes an appendLayers image with a ${compression} layer and reads it back identical`, async () => {
      const img = await build(compression);
      await validateImage(img);
      const ref = parseReference(`${reg.host}/mem/${compression}:v1`);
      const d = await push(ref, img);
      expect(d.digest).toBe(await img.digest());
      expect(d.mediaType).toBe(MediaTypes.OciManifest);
      const back = await remoteImage(ref);
      await validateImage(back);
      expect(Buffer.from(await back.rawManifest())).toEqual(Buffer.from(await img.rawManifest()));
      const [l] = await back.layers();
      expect(await l!.mediaType()).toBe(compression === 'gzip' ? MediaTypes.OciLayerGzip : MediaTypes.OciLayerZstd);
      expect(await l!.diffId()).toBe((await img.config()).rootfs.diff_ids[0]);
      const store = new FileContentStore(await temp('tsbuild-store-'));
      expect((await pull(ref, store)).digest).toBe(d.digest);
      if (!noSkopeo) {
        const raw = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref.registry}/${ref.repository}:v1`]);
        expect(sha256(raw.stdout)).toBe(d.digest);
      }
    });
  }
});
