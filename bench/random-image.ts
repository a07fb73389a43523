/**
 * The large image of the transfer cases: an OCI image layout with several layers of random
 * (incompressible) bytes, about 1 GiB in all, made once per machine and kept under the test cache
 * directory ($TSBUILD_TEST_CACHE, else /var/cache/tsbuild-test for root, else a per-user temp dir).
 * Each layer is a tar made by GNU tar (sorted, owner 0, mtime 0) of one file from /dev/urandom,
 * compressed by `pigz -1` (gzip -1 without pigz). The directory is built under a temporary name and
 * renamed into place, so an interrupted run leaves nothing that looks finished.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The test cache directory (same rule as test/helpers/base-images.ts). */
export function cacheDir(): string {
  const env = process.env['TSBUILD_TEST_CACHE'];
  if (env) return env;
  if (process.getuid?.() === 0) return '/var/cache/tsbuild-test';
  return join(tmpdir(), `tsbuild-test-cache-${process.getuid?.() ?? 'user'}`);
}

/** The tag the image has in its layout's index.json. */
export const RANDOM_TAG = 'random';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/**
 * Returns the layout directory of a random image with `layers` layers of `layerMiB` MiB each
 * (default 4 × 256 MiB), making it first when missing (takes a minute).
 */
export async function randomLayout(layers = 4, layerMiB = 256): Promise<string> {
  const dir = join(cacheDir(), `bench-random-${layers}x${layerMiB}m-v1`);
  if (existsSync(join(dir, 'index.json'))) return dir;
  await mkdir(cacheDir(), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const blobs = join(tmp, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const gzip = spawnSync('sh', ['-c', 'command -v pigz'], { encoding: 'utf8' }).status === 0 ? 'pigz -1' : 'gzip -1 -n';
  try {
    const descs: { mediaType: string; digest: string; size: number }[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < layers; i++) {
      const work = join(tmp, `work-${i}`);
      await mkdir(join(work, 'data'), { recursive: true });
      const script = [
        `head -c ${layerMiB}M /dev/urandom > data/random-${i}.bin`,
        `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf layer.tar data`,
        `${gzip} -c layer.tar > layer.tar.gz`,
      ].join(' && ');
      const r = spawnSync('sh', ['-ec', script], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`making random layer ${i}: ${r.stderr.trim()}`);
      diffIds.push(await sha256File(join(work, 'layer.tar')));
      const digest = await sha256File(join(work, 'layer.tar.gz'));
      const size = (await stat(join(work, 'layer.tar.gz'))).size;
      await rename(join(work, 'layer.tar.gz'), join(blobs, digest.slice(7)));
      await rm(work, { recursive: true, force: true });
      descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size });
    }
    const put = async (bytes: Buffer): Promise<{ digest: string; size: number }> => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await writeFile(join(blobs, digest.slice(7)), bytes);
      return { digest, size: bytes.length };
    };
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const config = await put(
      Buffer.from(
        JSON.stringify({
          architecture: arch,
          os: 'linux',
          created: '1970-01-01T00:00:00Z',
          config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
          rootfs: { type: 'layers', diff_ids: diffIds },
          history: diffIds.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `random layer ${i}` })),
        }),
      ),
    );
    const manifest = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: descs,
        }),
      ),
    );
    await writeFile(join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(tmp, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': RANDOM_TAG } }],
      }),
    );
    await rename(tmp, dir);
    return dir;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
