import { Readable } from 'node:stream';
import { sha256 } from '../../../src/oci/digest.js';
import type { Image, Layer } from '../../../src/oci/image.js';
import type { TarEntry } from '../../../src/oci/tar/entry.js';
import { TarWriter } from '../../../src/oci/tar/writer.js';

/** A file/dir list for {@link tarOf}: `dir/` is a directory, `a=text` a file. */
export async function tarOf(items: string[]): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  w.stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((r) => w.stream.on('end', r));
  for (const it of items) {
    const base = { mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 };
    if (it.endsWith('/')) await w.add({ ...base, path: it.slice(0, -1), type: 'dir' } as TarEntry);
    else {
      const [path, text = ''] = it.split('=');
      const body = Buffer.from(text);
      await w.add({ ...base, mode: 0o644, path: path!, type: 'file', size: body.length } as TarEntry, body);
    }
  }
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

/** An in-memory uncompressed layer (blob = tar). */
export function memLayer(tar: Buffer): Layer {
  const d = sha256(tar);
  return {
    digest: async () => d,
    diffId: async () => d,
    size: async () => tar.length,
    mediaType: async () => 'application/vnd.oci.image.layer.v1.tar' as never,
    compressed: async () => Readable.from([tar]),
    uncompressed: async () => Readable.from([tar]),
    descriptor: async () => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: tar.length }),
  } as unknown as Layer;
}

/** An image that only knows its layers (all prepareRootfs reads). */
export function layersImage(layers: Layer[]): Image {
  return { layers: async () => layers } as unknown as Image;
}
