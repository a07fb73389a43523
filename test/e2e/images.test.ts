/**
 * The image commands as users run them (the built CLI): import, images, inspect, tag, rmi, prune, fsck.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needBuiltCli, needTool } from '../helpers/capabilities.js';
import { makeTempDir, removeTempDirs, run, runTsbuild, tsbuildOk } from '../helpers/tools.js';

const why = needBuiltCli() ?? needTool('tar');
if (why) console.warn(`skip: ${why}`);

let work: string;
let root: string;
let rootfs: string;

beforeAll(async () => {
  if (why) return;
  work = await makeTempDir('tsbuild-e2e-images-');
  root = join(work, 'store');
  rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(join(rootfs, 'etc', 'motd'), 'hello\n');
});
afterAll(async () => {
  await removeTempDirs();
});

async function blobCount(): Promise<number> {
  return (await readdir(join(root, 'blobs', 'sha256'))).length;
}

describe.skipIf(!!why)('tsbuild image commands', () => {
  it('import (directory and gzip tar) with --change, images, inspect, tag, rmi, prune, fsck', async () => {
    // === import a directory, with config changes
    const imp = await tsbuildOk(['import', rootfs, 'e2e/app:1', '--change', 'ENTRYPOINT ["/bin/app"]', '--change', 'CMD --help', '--change', 'EXPOSE 8080', '--change', 'LABEL a=b', '--change', 'USER 10', '--change', 'WORKDIR /w', '--change', 'VOLUME /v', '--change', 'STOPSIGNAL SIGINT', '--change', 'ENV X=1'], { root });
    const id = imp.stdout.trim();
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    const [info] = JSON.parse((await tsbuildOk(['inspect', 'e2e/app:1'], { root })).stdout) as { Id: string; RepoTags: string[]; Config: Record<string, unknown>; History: { created_by: string }[] }[];
    expect(info!.Id).toBe(id);
    expect(info!.RepoTags).toEqual(['e2e/app:1']);
    expect(info!.Config).toEqual({
      Entrypoint: ['/bin/app'],
      Cmd: ['/bin/sh', '-c', '--help'],
      ExposedPorts: { '8080/tcp': {} },
      Labels: { a: 'b' },
      User: '10',
      WorkingDir: '/w',
      Volumes: { '/v': {} },
      StopSignal: 'SIGINT',
      Env: ['X=1'],
    });
    expect(info!.History[0]!.created_by).toBe('tsbuild import');
    const tpl = await tsbuildOk(['inspect', '--format', '{{.Id}} {{.Config.User}} {{json .Config.Entrypoint}}', 'e2e/app:1'], { root });
    expect(tpl.stdout).toBe(`${id} 10 ["/bin/app"]\n`);

    // === import a gzip tar of the same tree without a name: untagged, listed with -a only
    await run('tar', ['-czf', join(work, 'rootfs.tgz'), '-C', rootfs, '.']);
    const id2 = (await tsbuildOk(['import', join(work, 'rootfs.tgz')], { root })).stdout.trim();
    expect(id2).toMatch(/^sha256:/);
    const table = (await tsbuildOk(['images'], { root })).stdout.split('\n');
    expect(table[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(table[1]).toMatch(new RegExp(`^e2e/app\\s+1\\s+${id.slice(7, 19)}\\s+`));
    expect(table).toHaveLength(3);
    const all = JSON.parse((await tsbuildOk(['images', '-a', '--format', 'json'], { root })).stdout) as { Name: string; ID: string }[];
    expect(all.map((x) => [x.Name, x.ID])).toEqual([
      ['docker.io/e2e/app:1', id],
      ['', id2],
    ]);

    // === tag by short id; rmi of one of two names only untags
    await tsbuildOk(['tag', id.slice(7, 19), 'e2e/app:2'], { root });
    const before = await blobCount();
    expect((await tsbuildOk(['rmi', 'e2e/app:2'], { root })).stdout).toBe('Untagged: e2e/app:2\n');
    expect(await blobCount()).toBe(before);

    // === rmi by id with two names needs -f
    await tsbuildOk(['tag', 'e2e/app:1', 'e2e/app:3'], { root });
    const refused = await runTsbuild(['rmi', id.slice(7, 19)], { root });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('must be forced');
    const rm = await tsbuildOk(['rmi', '-f', id.slice(7, 19)], { root });
    expect(rm.stdout).toBe(`Untagged: e2e/app:1\nUntagged: e2e/app:3\nDeleted: ${id}\n`);
    // only the untagged image's blobs remain (the two imports share nothing but the layer bytes' tar)
    const left = JSON.parse((await tsbuildOk(['images', '-a', '--format', 'json'], { root })).stdout) as { ID: string }[];
    expect(left.map((x) => x.ID)).toEqual([id2]);

    // === rmi of an unknown image: error naming it, exit 1, others still processed
    const bad = await runTsbuild(['rmi', 'nope:1'], { root });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('nope:1');

    // === prune drops the untagged image and every blob
    const pr = await tsbuildOk(['prune', '--format', 'json'], { root });
    const res = JSON.parse(pr.stdout) as { deletedImages: string[]; deletedBlobs: string[] };
    expect(res.deletedImages).toEqual([id2]);
    expect(res.deletedBlobs).toHaveLength(3);
    expect(await blobCount()).toBe(0);
    expect(JSON.parse((await tsbuildOk(['fsck', '--format', 'json'], { root })).stdout)).toEqual({ checked: 0, bad: [] });
  });

  it('fsck exits 1 and names a corrupt blob', async () => {
    const r = join(work, 'store2');
    await tsbuildOk(['import', rootfs, 'c:1'], { root: r });
    const names = await readdir(join(r, 'blobs', 'sha256'));
    await writeFile(join(r, 'blobs', 'sha256', names[0]!), 'garbage');
    const f = await runTsbuild(['fsck'], { root: r });
    expect(f.code).toBe(1);
    expect(f.stdout).toContain(`sha256:${names[0]}`);
  });

  it('import refuses an unsupported --change and stores no image', async () => {
    const r = join(work, 'store3');
    const res = await runTsbuild(['import', rootfs, 'x:1', '--change', 'RUN echo'], { root: r });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('RUN echo');
    const imgs = await runTsbuild(['images', '-a', '--format', 'json'], { root: r });
    expect(JSON.parse(imgs.stdout)).toEqual([]);
    expect(await readdir(join(r, 'blobs', 'sha256'))).toEqual([]);
  });
});
