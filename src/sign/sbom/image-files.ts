/**
 * Reads a few files out of an image without unpacking it: the layers are streamed bottom to top
 * through the tar reader, the wanted regular files are kept in memory (last layer wins), OCI
 * whiteouts (`.wh.<name>`, `.wh..wh..opq`) remove what lower layers put there, and symlinks among
 * the wanted paths are resolved inside the image root at the end.
 */
import type { Image } from '../../oci/image.js';
import { readTar } from '../../oci/tar/reader.js';
import { readAll } from '../../util/streams.js';

/** Largest single file kept (package databases are a few MB at most). */
const MAX_FILE = 64 << 20;

type Node = { kind: 'file'; data: Buffer; layer: number } | { kind: 'symlink'; target: string; layer: number } | { kind: 'link'; target: string; layer: number };

/** Normalises a tar path to `a/b/c` (no leading `./` or `/`, `.` and `..` resolved, never above the root). */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i === -1 ? '' : p.slice(0, i);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * The contents of the regular files of `img` whose cleaned path satisfies `wanted` (after
 * whiteouts, with symlinks and hard links resolved when their target is wanted too). Keys are
 * cleaned paths (`etc/os-release`); a wanted symlink appears under its own path with its target's
 * bytes. Each layer is read once, verified against its diff id by the image.
 */
export async function readImageFiles(img: Image, wanted: (path: string) => boolean): Promise<Map<string, Buffer>> {
  const nodes = new Map<string, Node>();
  const layers = await img.layers();
  for (let li = 0; li < layers.length; li++) {
    const layer = layers[li]!;
    for await (const { entry, body } of readTar(await layer.uncompressed())) {
      const path = cleanPath(entry.path);
      const dir = dirname(path);
      const base = basename(path);
      if (base === '.wh..wh..opq') {
        const prefix = dir === '' ? '' : `${dir}/`;
        for (const [k, n] of nodes) if (k.startsWith(prefix) && n.layer < li) nodes.delete(k);
        continue;
      }
      if (base.startsWith('.wh.')) {
        const target = dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`;
        for (const [k, n] of nodes) if ((k === target || k.startsWith(`${target}/`)) && n.layer < li) nodes.delete(k);
        continue;
      }
      // Anything else at a path replaces what lower layers had there (a dir over a file too).
      if (nodes.has(path)) nodes.delete(path);
      if (!wanted(path)) continue;
      if (entry.type === 'file') nodes.set(path, { kind: 'file', data: await readAll(body, MAX_FILE, `${path} in layer ${await layer.digest()}`), layer: li });
      else if (entry.type === 'symlink' && entry.linkname !== undefined) nodes.set(path, { kind: 'symlink', target: entry.linkname, layer: li });
      else if (entry.type === 'hardlink' && entry.linkname !== undefined) nodes.set(path, { kind: 'link', target: cleanPath(entry.linkname), layer: li });
    }
  }
  const out = new Map<string, Buffer>();
  for (const path of nodes.keys()) {
    const data = resolve(nodes, path);
    if (data) out.set(path, data);
  }
  return out;
}

function resolve(nodes: Map<string, Node>, path: string): Buffer | undefined {
  let cur = path;
  for (let hops = 0; hops < 16; hops++) {
    const n = nodes.get(cur);
    if (!n) return undefined;
    if (n.kind === 'file') return n.data;
    if (n.kind === 'link') cur = n.target;
    else cur = cleanPath(n.target.startsWith('/') ? n.target : `${dirname(cur)}/${n.target}`);
  }
  return undefined;
}
