/**
 * Interop of `tsbuild import/save/load` with independent tools: skopeo, umoci, oci-image-tool and
 * podman read what tsbuild writes, and tsbuild reads what skopeo and umoci write.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needPodmanWorks, needRoot, needTool } from '../../helpers/capabilities.js';
import { makeTempDir, removeTempDirs, run, tsbuildOk, runTsbuild } from '../../helpers/tools.js';

const base = firstReason(needBuiltCli(), needRoot(), needTool('busybox'));
const why = {
  skopeo: firstReason(base, needTool('skopeo')),
  umoci: firstReason(base, needTool('umoci')),
  oit: firstReason(base, needTool('oci-image-tool')),
  podman: firstReason(base, needTool('podman'), base ? undefined : needPodmanWorks()),
  // Debian's docker.io (20.10): not installed by .ci/setup; the test runs where it is.
  docker: firstReason(base, needTool('dockerd'), existsSync('/usr/bin/docker') ? undefined : '/usr/bin/docker (Debian docker.io 20.10) is not installed'),
};
for (const [k, v] of Object.entries({ base, ...why })) if (v) console.warn(`skip (${k}): ${v}`);

interface Summary {
  Name: string;
  ID: string;
  Digest: string;
}
interface Inspect {
  Id: string;
  RootFS: { Layers: string[] };
  Config: { Cmd?: string[] } | null;
  Manifest: { layers: unknown[] };
}

let rootfs: string;
let work: string;
let root: string;
const tag = `peers-${randomBytes(4).toString('hex')}`;
const name = `localhost/tsbuild-test:${tag}`;
let manifestDigest: string;
let diffIds: string[];
const podmanImages: string[] = [];

async function images(r: string): Promise<Summary[]> {
  return JSON.parse((await tsbuildOk(['images', '-a', '--format', 'json'], { root: r })).stdout) as Summary[];
}
async function inspect(r: string, ref: string): Promise<Inspect> {
  return (JSON.parse((await tsbuildOk(['inspect', ref], { root: r })).stdout) as Inspect[])[0]!;
}
async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeout: 180_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Path → type, mode, uid/gid, content hash or link target of every entry of a tree. */
async function treeManifest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await readdir(join(dir, rel))).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(dir, p));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(p, `l ${await readlink(join(dir, p))}`);
      else if (st.isDirectory()) {
        out.set(p, `d ${mode} ${st.uid}:${st.gid}`);
        await walk(p);
      } else if (st.isFile()) out.set(p, `f ${mode} ${st.uid}:${st.gid} ${createHash('sha256').update(await readFile(join(dir, p))).digest('hex')}`);
      else out.set(p, `o ${st.mode.toString(8)}`);
    }
  };
  await walk('');
  return out;
}

beforeAll(async () => {
  if (base) return;
  rootfs = await busyboxRootfs();
  work = await makeTempDir('tsbuild-peers-');
  root = join(work, 'store');
  await tsbuildOk(['import', rootfs, name, '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PEERS=1'], { root });
  const s = (await images(root)).find((x) => x.Name === `${name}`);
  expect(s).toBeDefined();
  manifestDigest = s!.Digest;
  diffIds = (await inspect(root, name)).RootFS.Layers;
  await tsbuildOk(['save', name, '-o', join(work, 'docker.tar')], { root });
  await tsbuildOk(['save', name, '-o', join(work, 'oci.tar'), '--format', 'oci'], { root });
  await mkdir(join(work, 'layout'));
  await ok('tar', ['-xf', join(work, 'oci.tar'), '-C', join(work, 'layout')]);
}, 300_000);

afterAll(async () => {
  for (const img of podmanImages) await run('podman', ['rmi', '--force', img]).catch(() => undefined);
  await removeTempDirs();
});

describe('peer tools read what tsbuild writes', () => {
  it.skipIf(!!why.skopeo)('skopeo inspects and copies our docker-archive and OCI archive', async () => {
    const d = JSON.parse(await ok('skopeo', ['inspect', `docker-archive:${join(work, 'docker.tar')}`])) as { Layers: string[]; Os: string; Env: string[] };
    expect(d.Os).toBe('linux');
    expect(d.Env).toContain('PEERS=1');
    expect(d.Layers).toEqual(diffIds);
    const o = JSON.parse(await ok('skopeo', ['inspect', `oci-archive:${join(work, 'oci.tar')}:${tag}`])) as { Digest: string };
    expect(o.Digest).toBe(manifestDigest);
    const l = JSON.parse(await ok('skopeo', ['inspect', `oci:${join(work, 'layout')}:${tag}`])) as { Digest: string };
    expect(l.Digest).toBe(manifestDigest);
    // docker save (25+) archives are OCI layouts too: skopeo reads ours as an OCI archive as well
    const da = JSON.parse(await ok('skopeo', ['inspect', `oci-archive:${join(work, 'docker.tar')}:${tag}`])) as { Digest: string };
    expect(da.Digest).toBe(manifestDigest);
    await ok('skopeo', ['copy', `docker-archive:${join(work, 'docker.tar')}`, `oci:${join(work, 'skopeo-oci')}:copied`]);
    await ok('skopeo', ['copy', `oci-archive:${join(work, 'oci.tar')}:${tag}`, `docker-archive:${join(work, 'skopeo-docker.tar')}:localhost/skopeo-made:1`]);
  });

  it.skipIf(!!why.umoci)('umoci unpacks our OCI layout to the source tree', async () => {
    const bundle = join(work, 'bundle');
    await ok('umoci', ['unpack', '--image', `${join(work, 'layout')}:${tag}`, bundle]);
    const want = await treeManifest(rootfs);
    const got = await treeManifest(join(bundle, 'rootfs'));
    expect(got.size).toBeGreaterThan(100);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
  });

  it.skipIf(!!why.oit)('oci-image-tool validates our OCI layout and the layout inside our docker-archive', async () => {
    const r1 = await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, join(work, 'layout')]);
    expect(r1.stdout + r1.stderr).toContain('Validation succeeded');
    expect(r1.code).toBe(0);
    const d = join(work, 'docker-layout');
    await mkdir(d);
    await ok('tar', ['-xf', join(work, 'docker.tar'), '-C', d]);
    const r2 = await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, d]);
    expect(r2.code).toBe(0);
  });

  it.skipIf(!!why.podman)('podman loads our docker-archive and OCI archive and runs the image', async () => {
    podmanImages.push(name);
    const l = await run('podman', ['load', '-i', join(work, 'docker.tar')]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(`Loaded image: ${name}`);
    const r = await run('podman', ['run', '--rm', '--network', 'none', name, '/bin/echo', 'hi']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(0);
    const id = (await ok('podman', ['image', 'inspect', '--format', '{{.Id}}', name])).trim();
    expect(`sha256:${id}`).toBe((await inspect(root, name)).Id);
    await ok('podman', ['rmi', '--force', name]);
    const o = await run('podman', ['load', '-i', join(work, 'oci.tar')]);
    expect(o.code, o.stderr).toBe(0);
    const r2 = await run('podman', ['run', '--rm', '--network', 'none', name, '/bin/echo', 'again']);
    expect(r2.stdout).toBe('again\n');
  });
});

describe('tsbuild reads what tsbuild and peer tools write', () => {
  it.skipIf(!!base)('save → load round trip keeps the manifest digest, for both formats', async () => {
    for (const f of ['docker.tar', 'oci.tar']) {
      const r2 = join(work, `rt-${f}`);
      const out = await tsbuildOk(['load', '-i', join(work, f)], { root: r2 });
      expect(out.stdout).toBe(`Loaded image: ${name}\n`);
      const s = await images(r2);
      expect(s.map((x) => [x.Name, x.Digest])).toEqual([[name, manifestDigest]]);
      const fsck = await tsbuildOk(['fsck', '--format', 'json'], { root: r2 });
      expect(JSON.parse(fsck.stdout)).toEqual({ checked: 3, bad: [] });
    }
    // from stdin, gzip-compressed
    await ok('sh', ['-c', `gzip -c ${join(work, 'docker.tar')} > ${join(work, 'docker.tar.gz')}`]);
    const r4 = join(work, 'rt-stdin');
    const fromStdin = await tsbuildOk(['load'], { root: r4, input: await readFile(join(work, 'docker.tar.gz')) });
    expect(fromStdin.stdout).toBe(`Loaded image: ${name}\n`);
    expect((await images(r4)).map((x) => x.Digest)).toEqual([manifestDigest]);
    const r3 = join(work, 'rt-layout');
    expect((await tsbuildOk(['load', '-i', join(work, 'layout')], { root: r3 })).stdout).toBe(`Loaded image: ${name}\n`);
    expect((await images(r3)).map((x) => x.Digest)).toEqual([manifestDigest]);
  });

  it.skipIf(!!why.skopeo)('loads skopeo-made OCI layouts and (classic) docker-archives', async () => {
    const r2 = join(work, 'from-skopeo');
    if (!(await lstat(join(work, 'skopeo-docker.tar')).catch(() => undefined))) {
      await ok('skopeo', ['copy', `oci-archive:${join(work, 'oci.tar')}:${tag}`, `docker-archive:${join(work, 'skopeo-docker.tar')}:localhost/skopeo-made:1`]);
      await ok('skopeo', ['copy', `docker-archive:${join(work, 'docker.tar')}`, `oci:${join(work, 'skopeo-oci')}:copied`]);
    }
    const a = await tsbuildOk(['load', '-i', join(work, 'skopeo-docker.tar')], { root: r2 });
    expect(a.stdout).toBe('Loaded image: localhost/skopeo-made:1\n');
    const ia = await inspect(r2, 'localhost/skopeo-made:1');
    expect(ia.RootFS.Layers).toEqual(diffIds);
    expect(ia.Config?.Cmd).toEqual(['/bin/sh']);
    // skopeo's OCI layout names the image only by a bare tag: loaded untagged, by ID
    const b = await tsbuildOk(['load', '-i', join(work, 'skopeo-oci')], { root: r2 });
    expect(b.stdout).toMatch(/^Loaded image ID: sha256:[a-f0-9]{64}\n$/);
    const id = b.stdout.trim().split(' ').pop()!;
    expect((await inspect(r2, id)).RootFS.Layers).toEqual(diffIds);
    expect(JSON.parse((await tsbuildOk(['fsck', '--format', 'json'], { root: r2 })).stdout).bad).toEqual([]);
  });

  it.skipIf(!!why.umoci)('loads a layout that umoci repacked with an extra layer', async () => {
    const lay = join(work, 'umoci-layout');
    await ok('cp', ['-a', join(work, 'layout'), lay]);
    const bundle = join(work, 'umoci-bundle');
    await ok('umoci', ['unpack', '--image', `${lay}:${tag}`, bundle]);
    await writeFile(join(bundle, 'rootfs', 'added-by-umoci'), 'hello\n');
    await ok('umoci', ['repack', '--image', `${lay}:repacked`, bundle]);
    const r2 = join(work, 'from-umoci');
    const out = await tsbuildOk(['load', '-i', lay], { root: r2 });
    // umoci copies the descriptor annotations (containerd name) and sets ref.name to the new tag
    expect(out.stdout.trim().split('\n').sort()).toEqual([`Loaded image: ${name}`, `Loaded image: ${name.replace(/:[^:]+$/, ':repacked')}`].sort());
    const id = name.replace(/:[^:]+$/, ':repacked');
    const i = await inspect(r2, id);
    expect(i.RootFS.Layers).toHaveLength(2);
    expect(i.RootFS.Layers[0]).toBe(diffIds[0]);
    // and it saves again into something skopeo accepts
    if (!why.skopeo) {
      await tsbuildOk(['tag', (await inspect(r2, id)).Id, 'localhost/umoci-made:1'], { root: r2 });
      await tsbuildOk(['save', 'localhost/umoci-made:1', '-o', join(work, 'umoci-made.tar')], { root: r2 });
      const s = JSON.parse(await ok('skopeo', ['inspect', `docker-archive:${join(work, 'umoci-made.tar')}`])) as { Layers: string[] };
      expect(s.Layers).toEqual(i.RootFS.Layers);
    }
  });

  it.skipIf(!!base)('errors name the object and exit non-zero; a failed save leaves no file', async () => {
    const r = await runTsbuild(['inspect', 'no-such-image:1'], { root });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no-such-image:1');
    const s = await runTsbuild(['save', 'no-such-image:1', '-o', join(work, 'nope.tar')], { root });
    expect(s.code).not.toBe(0);
    expect(await lstat(join(work, 'nope.tar')).catch(() => undefined)).toBeUndefined();
    expect((await readdir(work)).filter((n) => n.startsWith('nope.tar'))).toEqual([]);
    const l = await runTsbuild(['load', '-i', join(work, 'missing.tar')], { root });
    expect(l.code).not.toBe(0);
    expect(l.stderr).toContain('missing.tar');
  });
});

describe('docker engine (20.10)', () => {
  let dir: string;
  let dockerd: ChildProcess | undefined;
  const docker = (args: string[]): Promise<Awaited<ReturnType<typeof run>>> => run('/usr/bin/docker', ['-H', `unix://${join(dir, 'sock')}`, ...args], { timeout: 180_000 });

  beforeAll(async () => {
    if (why.docker) return;
    dir = await makeTempDir('tsbuild-dockerd-');
    const log = openSync(join(dir, 'log'), 'w');
    dockerd = spawn('dockerd', ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'pid'), '-H', `unix://${join(dir, 'sock')}`, '--iptables=false', '--ip-masq=false', '--bridge=none'], { stdio: ['ignore', log, log] });
    closeSync(log);
    for (let i = 0; i < 120; i++) {
      if (existsSync(join(dir, 'sock')) && (await docker(['version'])).code === 0) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`dockerd did not start: ${await readFile(join(dir, 'log'), 'utf8')}`);
  }, 120_000);

  afterAll(async () => {
    if (!dockerd) return;
    const exited = new Promise((r) => dockerd!.once('exit', r));
    dockerd.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (dockerd.exitCode === null && dockerd.signalCode === null) dockerd.kill('SIGKILL');
    // dockerd unmounts its overlays on a clean exit; be sure nothing under dir stays mounted
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
    for (const m of mounts.reverse()) await run('umount', ['-l', m]);
  }, 60_000);

  it.skipIf(!!why.docker)('docker load accepts our docker-archive and runs it; tsbuild loads what docker save writes', async () => {
    const l = await docker(['load', '-i', join(work, 'docker.tar')]);
    expect(l.stderr).toBe('');
    expect(l.stdout).toContain(`Loaded image: ${name}`);
    const r = await docker(['run', '--rm', '--network', 'none', name, '/bin/echo', 'hi']);
    expect(r.stdout).toBe('hi\n');
    const id = (await docker(['image', 'inspect', '--format', '{{.Id}}', name])).stdout.trim();
    expect(id).toBe((await inspect(root, name)).Id);
    // docker 20.10 writes the classic layout (<id>/layer.tar, uncompressed)
    const saved = join(work, 'docker-saved.tar');
    expect((await docker(['save', name, '-o', saved])).code).toBe(0);
    const r2 = join(work, 'from-docker');
    expect((await tsbuildOk(['load', '-i', saved], { root: r2 })).stdout).toBe(`Loaded image: ${name}\n`);
    const i = await inspect(r2, name);
    expect(i.Id).toBe(id);
    expect(i.RootFS.Layers).toEqual(diffIds);
    await docker(['rmi', '--force', name]);
  });
});
