/**
 * `tsbuild build --output`: where a built image goes besides (or instead of) the image store.
 * `type=image` (default) stores and tags it; `oci`/`docker` write an archive (`dest=-` for
 * stdout; `tar=false` with `oci` writes an OCI layout directory); `local` writes the root
 * filesystem into a directory; `tar` writes the root filesystem as one tar.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Image } from '../../oci/image.js';
import { writeArchive } from '../../oci/archive/write.js';
import { writeLayout } from '../../oci/layout/layout.js';
import type { ImageStore } from '../../oci/store/image-store.js';
import { extractLayer } from '../../oci/tar/extract.js';
import { tarDirectory } from '../../oci/tar/from-dir.js';
import { UsageError } from '../../util/errors.js';

/** A parsed `--output`. */
export interface OutputSpec {
  readonly type: 'image' | 'oci' | 'docker' | 'local' | 'tar';
  readonly dest?: string;
  /** `tar=false` (oci): a layout directory instead of an archive. */
  readonly tar: boolean;
}

/** Parses `type=oci,dest=out.tar` (also the buildx shorthand: a bare path means `type=local,dest=PATH`; `-` means `type=tar,dest=-`). */
export function parseOutput(s: string): OutputSpec {
  if (!s.includes('=')) return s === '-' ? { type: 'tar', dest: '-', tar: true } : { type: 'local', dest: s, tar: true };
  const kv = new Map<string, string>();
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid --output ${JSON.stringify(s)}: expected key=value pairs`);
    kv.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const type = kv.get('type') ?? 'image';
  if (!['image', 'oci', 'docker', 'local', 'tar'].includes(type)) throw new UsageError('INVALID_ARGUMENT', `invalid --output type ${JSON.stringify(type)}: use image, oci, docker, local or tar`);
  const dest = kv.get('dest');
  if (type !== 'image' && !dest) throw new UsageError('INVALID_ARGUMENT', `--output type=${type} needs dest=`);
  if (type === 'local' && dest === '-') throw new UsageError('INVALID_ARGUMENT', '--output type=local cannot write to stdout');
  return { type: type as OutputSpec['type'], ...(dest ? { dest } : {}), tar: kv.get('tar') !== 'false' };
}

async function destination(dest: string, stdout: NodeJS.WritableStream): Promise<Writable> {
  if (dest === '-') return stdout as unknown as Writable;
  await mkdir(dirname(dest), { recursive: true });
  return createWriteStream(dest);
}

/** Writes `image` (already in `store`, manifest `desc`) to `spec`. */
export async function writeOutput(spec: OutputSpec, image: Image, desc: Descriptor, store: ImageStore, names: readonly string[], stdout: NodeJS.WritableStream): Promise<void> {
  const dest = spec.dest!;
  if (spec.type === 'oci' || spec.type === 'docker') {
    const entries = [{ descriptor: desc, names }];
    if (spec.type === 'oci' && !spec.tar) {
      await writeLayout(dest, store.content, entries);
      return;
    }
    const out = await destination(dest, stdout);
    await pipeline(writeArchive(store.content, entries, { format: spec.type }), out, { end: dest !== '-' });
    return;
  }
  if (spec.type === 'local') {
    await mkdir(dest, { recursive: true });
    for (const l of await image.layers()) await extractLayer(await l.uncompressed(), dest, { whiteouts: 'apply' });
    return;
  }
  // tar: the merged root filesystem
  const tmp = await mkdtemp(join(store.root, 'tmp-output-'));
  try {
    for (const l of await image.layers()) await extractLayer(await l.uncompressed(), tmp, { whiteouts: 'apply' });
    const out = await destination(dest, stdout);
    await pipeline(tarDirectory(tmp), out, { end: dest !== '-' });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
