import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Descriptor } from '../../../../src/oci/descriptor.js';
import type { ImageStore } from '../../../../src/oci/store/image-store.js';
import { importRootfs } from '../../../../src/oci/store/import.js';

/**
 * Imports a tiny rootfs (a few files whose content depends on `seed`) into `store` and returns
 * the manifest descriptor. Deterministic for a given seed: `created` is fixed.
 */
export async function smallImage(store: ImageStore, seed: string, changes: string[] = []): Promise<Descriptor> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-rootfs-'));
  try {
    await mkdir(join(dir, 'etc'));
    await mkdir(join(dir, 'data'));
    await writeFile(join(dir, 'etc', 'hostname'), `${seed}\n`);
    await writeFile(join(dir, 'data', 'blob.bin'), Buffer.alloc(40_000, seed.charCodeAt(0)));
    return await importRootfs(store, dir, { changes, created: new Date('2024-01-02T03:04:05Z'), message: `seed ${seed}` });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
