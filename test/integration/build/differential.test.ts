/**
 * Differential test against buildah (Debian's buildah 1.28, `buildah build`, chroot isolation,
 * vfs storage in a temp root): each corpus case buildah 1.28 can build is built by buildah and
 * by tsbuild on the same busybox base; buildah's result comes back through `buildah push` to an
 * OCI layout. Compared: the root filesystem (path, type, mode, uid, gid, size, content hash, link
 * target, hardlink groups) and the container config. Not compared: history (buildah writes its
 * own `created_by` text, e.g. "/bin/sh -c #(nop) ..." in the classic docker builder's form).
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileContentStore } from '../../../src/oci/content/file-store.js';
import { readArchivePath } from '../../../src/oci/archive/read.js';
import { imageFromContent } from '../../../src/oci/layout/from-content.js';
import { writeArchive } from '../../../src/oci/archive/write.js';
import type { Image } from '../../../src/oci/image.js';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import { firstReason, needTool } from '../../helpers/capabilities.js';
import { run } from '../../helpers/tools.js';
import { buildUnavailable, BUSYBOX, CASES, makeStore, runBuild, treeManifest, unpackImage, type RootfsNode } from './harness.js';
import { mountStubPaths, variantOf } from './differential-cases.js';

const why = firstReason(buildUnavailable(), needTool('buildah'));
if (why) console.warn(`skip: ${why}`);

/** One corpus case: its context under testdata/build; `tag` names the result in both engines (for later cases). */
interface Case {
  readonly name: string;
  readonly dir: string;
  readonly tag?: string;
  readonly buildArgs?: Record<string, string>;
  /** Instructions buildah 1.28 cannot build (with heredoc bodies): both engines build the case without them. */
  readonly drop?: readonly RegExp[];
  /** Build secrets (id → value), given to buildah as `--secret id=...,src=<file>`. */
  readonly secrets?: Record<string, string>;
  /** A named, argued exception: true when the difference at `path` is buildah 1.28's own behaviour. */
  readonly explained?: (path: string, ours: RootfsNode | undefined, buildah: RootfsNode | undefined) => boolean;
}

/**
 * more-edge exceptions, where buildah 1.28 differs from BuildKit (the BuildKit differential shows
 * tsbuild matches it there, or, for --chown, matches BuildKit 0.23+ as argued in that file):
 * - ADD --chown of an archive: buildah keeps the tar's owners for the entries (as docker 20.10
 *   does) but chowns the directories the tar only implies (BuildKit: 0:0);
 * - a write under a declared VOLUME after the VOLUME: buildah drops it, as Docker's classic builder
 *   did; BuildKit keeps it.
 */
function moreEdge(path: string, ours: RootfsNode | undefined, buildah: RootfsNode | undefined): boolean {
  if (path === 'vol-data/file' && ours && !buildah) return true;
  if (!path.startsWith('added2/') || !ours || !buildah) return false;
  const implied = path === 'added2/implicit' || path === 'added2/implicit/parent';
  const [want, got] = implied ? [{ uid: 0, gid: 0 }, { uid: 77, gid: 88 }] : [{ uid: 77, gid: 88 }, { uid: buildah.uid, gid: buildah.gid }];
  return ours.uid === want.uid && ours.gid === want.gid && buildah.uid === got.uid && buildah.gid === got.gid && JSON.stringify({ ...ours, ...got }) === JSON.stringify(buildah);
}

/** Corpus cases buildah 1.28 can build, in dependency order (onbuild/child uses onbuild/parent). */
const COMPARED: Case[] = [
  { name: 'differential', dir: 'differential/ctx' },
  { name: 'multistage', dir: 'multistage' },
  { name: 'whiteouts', dir: 'whiteouts' },
  { name: 'cache', dir: 'cache' },
  { name: 'scratch', dir: 'scratch' },
  { name: 'onbuild/parent', dir: 'onbuild/parent', tag: 'localhost/test/onbuild-parent:latest' },
  { name: 'onbuild/child', dir: 'onbuild/child' },
  { name: 'metadata', dir: 'metadata' },
  { name: 'arg-scoping', dir: 'arg-scoping', buildArgs: { FLAVOUR: 'from-cli' } },
  { name: 'perms', dir: 'perms' },
  { name: 'copy-from-image', dir: 'copy-from-image' },
  { name: 'add-archives', dir: 'add-archives' },
  { name: 'add-zstd', dir: 'add-zstd' },
  { name: 'dockerignore-rules', dir: 'dockerignore-rules' },
  { name: 'hardlinks', dir: 'hardlinks' },
  // buildah's chroot isolation cannot mknod ("exit status 1")
  { name: 'fs-edge (no mknod)', dir: 'fs-edge', drop: [/^RUN mknod /] },
  { name: 'copy-edge', dir: 'copy-edge' },
  { name: 'more-edge', dir: 'more-edge', explained: moreEdge },
  { name: 'instr-edge', dir: 'instr-edge' },
  // the rest of these cases, without what buildah 1.28 rejects: heredocs (buildah 1.33+),
  // RUN --mount=type=secret,env= ("secret should have syntax id=id[,target=path,...]"),
  // cache sharing=private ("unrecognized value \"private\" for field `sharing`")
  { name: 'run-basic (no heredoc)', dir: 'run-basic', drop: [/^RUN <</] },
  { name: 'copy-rules (no heredoc)', dir: 'copy-rules', drop: [/^COPY <</] },
  { name: 'mounts (no secret env=)', dir: 'mounts', drop: [/type=secret,.*env=/], secrets: { token: 'diff-token-value\n' } },
  // and tmpfs size= ("size: invalid mount option")
  {
    name: 'mount-types (no secret env=, no sharing=private, no tmpfs size=)',
    dir: 'mount-types',
    drop: [/type=secret,.*env=/, /sharing=private/, /type=tmpfs,.*size=/],
    secrets: { token: 's3cr3t-value' },
  },
];

/** Corpus cases not built by buildah, with the reason (printed). */
const NOT_COMPARED: Record<string, string> = {
  heredocs: 'every instruction is a heredoc: buildah 1.28 reads the body lines as instructions ("Unknown instruction")',
  'network-none': 'RUN --network: buildah 1.28 "RUN only supports the --mount flag"; without it the case is empty',
  'copy-link-parents': 'COPY --link/--parents/--exclude: buildah 1.28 "COPY only supports the --chmod --chown and --from flags"',
  'run-env': "what a RUN sees (capabilities, seccomp, /dev): buildah's chroot isolation is not BuildKit's runc sandbox; compared against BuildKit only",
  parallel: 'records timestamps (nondeterministic by design)',
  'fail-run': 'a failure case (both fail)',
  'missing-copy': 'a failure case (both fail)',
  dockerignore: 'a failure case (the ignored file is missing in both)',
  'debian-apt': 'Debian base: apt/dpkg logs and caches carry timestamps; covered by debian.test.ts',
};
for (const [k, v] of Object.entries(NOT_COMPARED)) if (!why) console.warn(`skip (buildah differential ${k}): ${v}`);

const temps: string[] = [];
const tmp = (p: string): string => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
let root = '';
let store: ImageStore;
let bh: string[] = [];
/** buildah's environment: TMPDIR is where buildah 1.28 keeps RUN cache mounts (else the host-wide /var/tmp/buildah-cache). */
let bhEnv: NodeJS.ProcessEnv = {};
const buildah = (args: readonly string[], timeout = 300_000): ReturnType<typeof run> => run('buildah', [...bh, ...args], { timeout, env: bhEnv });

beforeAll(async () => {
  if (why) return;
  ({ root, store } = await makeStore());
  const work = tmp('tsbuild-build-buildah-');
  bh = ['--root', join(work, 'root'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs'];
  mkdirSync(join(work, 'tmp'));
  bhEnv = { ...process.env, TMPDIR: join(work, 'tmp') };
  const rec = await store.resolve(BUSYBOX);
  await pipeline(writeArchive(store.content, [{ descriptor: rec.descriptor, names: [BUSYBOX] }], { format: 'docker' }), createWriteStream(join(work, 'base.tar')));
  const p = await buildah(['pull', '-q', `docker-archive:${join(work, 'base.tar')}`]);
  if (p.code !== 0) throw new Error(`buildah pull: ${p.stderr}`);
  const t = await buildah(['tag', p.stdout.trim().split('\n').pop()!, BUSYBOX]);
  if (t.code !== 0) throw new Error(`buildah tag: ${t.stderr}`);
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const t of temps.reverse()) rmSync(t, { recursive: true, force: true });
});

/**
 * Builds `c` with buildah (docker format, so HEALTHCHECK/ONBUILD/SHELL are kept) and reads it back
 * from a docker archive (a push to an OCI layout would convert the config and drop those).
 */
async function buildahBuild(c: Case, tag: string): Promise<Image> {
  const args = ['build', '--isolation', 'chroot', '--pull=never', '--format', 'docker', '-t', tag];
  for (const [k, v] of Object.entries(c.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  const side = tmp('tsbuild-buildah-side-');
  if (c.drop) {
    writeFileSync(join(side, 'Dockerfile'), variantOf(c.dir, c.drop));
    args.push('-f', join(side, 'Dockerfile'));
  }
  for (const [id, v] of Object.entries(c.secrets ?? {})) {
    writeFileSync(join(side, `secret-${id}`), v);
    args.push('--secret', `id=${id},src=${join(side, `secret-${id}`)}`);
  }
  // buildah 1.28 binds the context itself for RUN --mount=type=bind,rw (writes reach the host
  // directory; BuildKit and tsbuild give the RUN a copy): it builds from a copy of the context
  const ctx = join(side, 'context');
  const cp = await run('cp', ['-a', join(CASES, c.dir), ctx]);
  if (cp.code !== 0) throw new Error(`cp ${c.dir}: ${cp.stderr}`);
  const b = await buildah([...args, ctx]);
  if (b.code !== 0) throw new Error(`buildah build ${c.name} exited ${b.code}: ${b.stderr.slice(-3000)}`);
  const push = await buildah(['push', tag, `docker-archive:${join(side, 'img.tar')}:${tag}`]);
  if (push.code !== 0) throw new Error(`buildah push ${tag}: ${push.stderr}`);
  const content = new FileContentStore(join(side, 'store'));
  const read = await readArchivePath(join(side, 'img.tar'), content);
  return imageFromContent(content, read.images[0]!.descriptor);
}

/**
 * Exceptions (buildah 1.28's own artefacts, absent from BuildKit's and tsbuild's layers; the
 * BuildKit differential shows tsbuild matches BuildKit there):
 * - buildah leaves its RUN mount points in layers: empty /etc/hosts, /etc/resolv.conf, /run;
 * - the empty directories it creates as mount points for RUN --mount targets (and their missing
 *   parents), as docker 20.10 does; BuildKit removes those since v0.11 (see the docker differential);
 * - the empty directories of the image's VOLUMEs, which buildah creates in the rootfs of a stage
 *   that has RUN or COPY after VOLUME; BuildKit records a VOLUME in the config only.
 * Only those, and only when empty, are skipped.
 */
function treeDiffs(mine: Map<string, RootfsNode>, other: Map<string, RootfsNode>, stubs: Set<string>, volumes: readonly string[], explained?: Case['explained']): string[] {
  const buildahArtefacts = new Set(['etc/hosts', 'etc/resolv.conf', 'run', ...stubs, ...volumes.map((v) => v.replace(/^\/+|\/+$/g, ''))]);
  const diffs: string[] = [];
  for (const p of [...new Set([...mine.keys(), ...other.keys()])].sort()) {
    const x = mine.get(p);
    const y = other.get(p);
    if (!x && y && buildahArtefacts.has(p) && y.size === 0 && (y.type === 'dir' ? ![...other.keys()].some((k) => k.startsWith(p + '/') && !buildahArtefacts.has(k)) : true)) continue;
    if (JSON.stringify(x) !== JSON.stringify(y) && !explained?.(p, x, y)) diffs.push(`${p}: ours ${JSON.stringify(x)} buildah ${JSON.stringify(y)}`);
  }
  return diffs;
}

const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'] as const;

/** "8000-8001/tcp" → ["8000/tcp", "8001/tcp"]; other specs unchanged. */
function expandRange(spec: string): string[] {
  const m = /^(\d+)-(\d+)(\/\w+)?$/.exec(spec);
  if (!m) return [spec];
  const out: string[] = [];
  for (let p = Number(m[1]); p <= Number(m[2]); p++) out.push(`${p}${m[3] ?? ''}`);
  return out;
}

async function configOf(img: Image, buildah = false): Promise<Record<string, unknown>> {
  const c = (await img.config()).config ?? {};
  const out: Record<string, unknown> = {};
  for (const k of CONFIG_KEYS) {
    let v = (c as Record<string, unknown>)[k];
    // buildah writes WorkingDir "/" for a FROM scratch stage without WORKDIR; BuildKit leaves it
    // unset; both mean the root directory (the runtime's default working directory)
    if (k === 'WorkingDir' && v === '/') v = undefined;
    // buildah labels every image with its version (io.buildah.version); not part of the Dockerfile
    if (buildah && k === 'Labels' && v && typeof v === 'object') v = Object.fromEntries(Object.entries(v).filter(([l]) => l !== 'io.buildah.version'));
    // buildah moves an ENV that replaces an inherited variable to the end of Env; BuildKit
    // replaces it in place (dockerfile2llb/convert.go addEnv), as tsbuild does (the BuildKit
    // differential checks the order): compared here as a set
    if (k === 'Env' && Array.isArray(v)) v = [...(v as string[])].sort();
    // buildah keeps an EXPOSE range as one key ("8000-8001/tcp"); BuildKit expands it to one key
    // per port (dockerfile2llb/convert_expose.go parsePorts), as tsbuild does
    if (buildah && k === 'ExposedPorts' && v && typeof v === 'object') v = Object.fromEntries(Object.keys(v).flatMap((p) => expandRange(p)).map((p) => [p, {}]));
    const empty = v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
    out[k] = empty ? null : v;
  }
  return out;
}

describe.skipIf(!!why)('differential: tsbuild build vs buildah build', () => {
  for (const c of COMPARED) {
    it(`${c.name}: same rootfs and config`, async () => {
      const tag = c.tag ?? `localhost/diff/${c.dir.replace(/[^a-z0-9]+/g, '-')}:latest`;
      const ours = await runBuild(root, store, {
        context: join(CASES, c.dir),
        noCache: true,
        ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}),
        ...(c.drop ? { dockerfile: variantOf(c.dir, c.drop) } : {}),
        ...(c.secrets ? { secrets: new Map(Object.entries(c.secrets).map(([k, v]) => [k, Buffer.from(v)])) } : {}),
      });
      if (c.tag) await store.tag(c.tag, await store.putImage(ours.result.image));
      const theirs = await buildahBuild(c, tag);

      const a = tmp('tsbuild-build-ours-');
      const t = tmp('tsbuild-build-theirs-');
      await unpackImage(ours.result.image, a);
      await unpackImage(theirs, t);
      const volumes = Object.keys((await theirs.config()).config?.Volumes ?? {});
      expect(treeDiffs(treeManifest(a, { hardlinks: true }), treeManifest(t, { hardlinks: true }), mountStubPaths(variantOf(c.dir, c.drop)), volumes, c.explained)).toEqual([]);
      expect(await configOf(ours.result.image)).toEqual(await configOf(theirs, true));
    }, 300_000);
  }
});
