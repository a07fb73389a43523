import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaTypes } from '../../../src/oci/media-types.js';
import { ImageStore } from '../../../src/oci/store/image-store.js';
import { tarDirectory } from '../../../src/oci/tar/from-dir.js';
import { prepareRootfs } from '../../../runtime/rootfs/prepare.js';
import { readFileInRoot } from '../../../runtime/rootfs/read-in-root.js';
import { SnapshotStore } from '../../../runtime/rootfs/snapshots.js';
import { runImage } from '../../../runtime/run.js';
import { capabilitiesFromMask } from '../../../runtime/spec/defaults.js';
import { specFromImage, type SpecOptions } from '../../../runtime/spec/from-image.js';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needCgroupV1, needOverlay, needRoot, needTool } from '../../helpers/capabilities.js';
import { REPO_ROOT } from '../../helpers/tools.js';

// The same specFromImage output run by runc (the reference runtime) and by tsbuild's own:
// the container must see the same user, groups, capabilities, seccomp mode, cwd and env.
const PROBE = join(REPO_ROOT, 'native/build/test-init');
const why = firstReason(needRoot(), needOverlay(), needCgroupV1(['memory', 'pids']), needTool('runc'), existsSync(PROBE) ? undefined : 'native/build is not built (make -C native)');
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('specFromImage under runc and under tsbuild', () => {
  let root = '';
  const parent = `tsbuild-runc-${process.pid}`;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsbuild-runc-'));
    const store = await ImageStore.open(root);
    const layer = await store.content.put(tarDirectory(await busyboxRootfs()), { mediaType: MediaTypes.OciLayer });
    const config = { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin', 'FROM_IMAGE=1'], Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
    const cdesc = await store.content.put(Buffer.from(JSON.stringify(config)), { mediaType: MediaTypes.OciConfig });
    const mdesc = await store.content.put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: cdesc, layers: [layer] })), { mediaType: MediaTypes.OciManifest });
    await store.tag('localhost/runc/busybox:latest', mdesc);
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
    // runc removes its container's cgroup but leaves the parent it created in every hierarchy
    const walk = (d: string, depth: number): void => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (!statSync(p).isDirectory()) continue;
        if (e === parent) removeTree(p);
        else if (depth < 4) walk(p, depth + 1);
      }
    };
    const removeTree = (d: string): void => {
      for (const e of readdirSync(d)) if (statSync(join(d, e)).isDirectory()) removeTree(join(d, e));
      rmdirSync(d);
    };
    walk('/sys/fs/cgroup', 0);
  });

  const probeArgs = ['/probe', 'id', 'caps', 'seccomp', 'cwd', 'env', 'hostname', 'syscall', 'keyctl', 'syscall', 'mount', 'syscall', 'getpid'];
  const cases: { name: string; opts: Partial<SpecOptions> }[] = [
    { name: 'defaults', opts: {} },
    { name: 'user, env, workdir, caps, no-new-privileges', opts: { user: 'nobody', env: ['X=1'], workdir: '/tmp', capAdd: ['SYS_ADMIN'], capDrop: ['CHOWN'], noNewPrivileges: true } },
    { name: 'non-root user with seccomp and without no-new-privileges', opts: { user: '1000:1000', capDrop: ['CHOWN'] } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const store = await ImageStore.open(root);
      const { image } = await store.imageFor('localhost/runc/busybox');
      const dir = mkdtempSync(join(tmpdir(), 'tsbuild-runc-bundle-'));
      const r = await prepareRootfs(new SnapshotStore(root), image, dir);
      let runcOut = '';
      try {
        const passwd = await readFileInRoot(r.rootfs, '/etc/passwd');
        const group = await readFileInRoot(r.rootfs, '/etc/group');
        const bnd = capabilitiesFromMask(/^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!);
        const spec = specFromImage(await image.config(), {
          id: `runc${process.pid}`, rootfs: r.rootfs, hostname: 'peer', cmd: probeArgs, kernelRelease: release(), hostCapabilities: bnd,
          readImageFile: (p) => (p === '/etc/passwd' ? passwd : group), binds: [{ source: PROBE, destination: '/probe', readonly: true }],
          cgroupsPath: `${parent}/${process.pid}`, ...c.opts,
        });
        writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
        const res = spawnSync('runc', ['--root', join(dir, 'state'), 'run', '--bundle', dir, `runc${process.pid}`], { encoding: 'utf8', timeout: 60_000 });
        expect(res.status, res.stderr).toBe(0);
        runcOut = res.stdout;
      } finally {
        await r.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
      const outFile = join(root, 'out');
      const fd = openSync(outFile, 'w');
      try {
        const res = await runImage({
          root, image: 'localhost/runc/busybox', cmd: probeArgs, hostname: 'peer', cgroupParent: parent, binds: [{ source: PROBE, destination: '/probe', readonly: true }],
          ...(c.opts.user ? { user: c.opts.user } : {}), ...(c.opts.env ? { env: c.opts.env } : {}), ...(c.opts.workdir ? { workdir: c.opts.workdir } : {}),
          ...(c.opts.capAdd ? { capAdd: c.opts.capAdd } : {}), ...(c.opts.capDrop ? { capDrop: c.opts.capDrop } : {}), noNewPrivileges: !!c.opts.noNewPrivileges,
          io: { stdin: 'null', stdout: fd, stderr: 'inherit' },
        });
        expect(res.exitCode).toBe(0);
      } finally {
        closeSync(fd);
      }
      const ours = readFileSync(outFile, 'utf8');
      expect(ours).toBe(runcOut);
      expect(ours).toContain('keyctl EPERM\n');
      expect(ours).toMatch(/Seccomp:\s+2/);
    });
  }
});
