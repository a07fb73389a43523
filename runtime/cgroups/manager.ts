import { promises as fsp } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { RuntimeError } from '../spec/errors.js';
import { parseProcCgroup } from './common.js';
import { nodeCgroupFs, type CgroupFs } from './fs.js';
import type { CgroupConfig, CgroupManager } from './types.js';
import { V1CgroupManager, V1_CONTROLLERS, type V1Hierarchy } from './v1.js';
import { V2CgroupManager } from './v2.js';

export type { CgroupConfig, CgroupManager, CgroupStats, FreezerState } from './types.js';

/** Options of {@link createCgroupManager}; tests pass a fake tree and a fake /proc/self/cgroup. */
export interface CgroupManagerOptions {
  /** Default /sys/fs/cgroup. */
  fsRoot?: string;
  /** Contents of /proc/self/cgroup (default: read it). */
  selfCgroup?: string;
  /** File operations (default: the real cgroupfs). */
  fs?: CgroupFs;
  /** Force a hierarchy instead of detecting one. */
  version?: 1 | 2;
  /**
   * Place the cgroup at `<hierarchy mount>/<name>` instead of under the runtime's own cgroup: an
   * absolute `linux.cgroupsPath` (runtime-spec: relative to the cgroups mount point).
   */
  fromRoot?: boolean;
}

/** What {@link detectCgroupLayout} found. */
export type CgroupLayout =
  | { version: 2; mount: string }
  | { version: 1; mounts: Record<string, string> /* controller → hierarchy mount dir */ };

const V2_NEEDED = ['memory', 'pids', 'cpu'];

/**
 * Detects the hierarchy to use, once: cgroup v2 when `fsRoot` itself is cgroup2
 * (cgroup.controllers at the top), or when a hybrid host's `fsRoot/unified` offers all of
 * memory, pids and cpu; otherwise v1 with one mount per controller (symlinks such as
 * cpu → cpu,cpuacct resolved).
 */
export async function detectCgroupLayout(fsRoot = '/sys/fs/cgroup', fs: CgroupFs = nodeCgroupFs): Promise<CgroupLayout> {
  if (await fs.exists(join(fsRoot, 'cgroup.controllers'))) return { version: 2, mount: fsRoot };
  const unified = join(fsRoot, 'unified');
  const uc = await fs.read(join(unified, 'cgroup.controllers')).catch(() => undefined);
  if (uc !== undefined) {
    const have = uc.split(/\s+/);
    if (V2_NEEDED.every((c) => have.includes(c))) return { version: 2, mount: unified };
  }
  const mounts: Record<string, string> = {};
  for (const c of V1_CONTROLLERS) {
    const p = join(fsRoot, c);
    if (await fs.exists(join(p, 'cgroup.procs'))) mounts[c] = await fs.realpath(p);
  }
  if (Object.keys(mounts).length === 0) throw new RuntimeError('CGROUP_UNSUPPORTED', `no usable cgroup hierarchy under ${fsRoot}`, { step: 'cgroup' });
  return { version: 1, mounts };
}

let cachedLayout: Promise<CgroupLayout> | undefined;

function checkName(name: string): void {
  const n = posix.normalize(name);
  if (!name || posix.isAbsolute(name) || n.startsWith('..') || n !== name.replace(/\/+$/, '')) {
    throw new RuntimeError('INVALID_SPEC', `invalid cgroup name ${JSON.stringify(name)}`);
  }
}

/**
 * Returns the manager for one container's cgroup, on v2 or v1 as detected once per process
 * (for the real /sys/fs/cgroup). Nothing is created until `create()`.
 *
 * Placement: the cgroup nests under the runtime's OWN cgroup (from /proc/self/cgroup), so a
 * runtime confined by its caller stays confined. On v1 that is `<own>/<name>` in each
 * hierarchy. On v2 a cgroup that holds processes may not enable controllers for children, so
 * the parent is the own cgroup's parent: `<parent of own>/<name>` (the root when own is /).
 */
export async function createCgroupManager(cfg: CgroupConfig, opts: CgroupManagerOptions = {}): Promise<CgroupManager> {
  checkName(cfg.name);
  const fs = opts.fs ?? nodeCgroupFs;
  const fsRoot = opts.fsRoot ?? '/sys/fs/cgroup';
  let layout: CgroupLayout;
  if (!opts.fsRoot && !opts.fs) layout = await (cachedLayout ??= detectCgroupLayout(fsRoot, fs));
  else layout = await detectCgroupLayout(fsRoot, fs);
  if (opts.version && opts.version !== layout.version) throw new RuntimeError('CGROUP_UNSUPPORTED', `cgroup v${opts.version} is not available under ${fsRoot}`, { step: 'cgroup' });
  const self = parseProcCgroup(opts.selfCgroup ?? (await fsp.readFile('/proc/self/cgroup', 'utf8')));
  if (layout.version === 2) {
    const own = opts.fromRoot ? '/' : (self.find((l) => l.id === '0' && l.controllers.length === 0)?.path ?? '/');
    const baseRel = own === '/' ? '/' : dirname(own);
    const base = join(layout.mount, baseRel);
    return new V2CgroupManager(fs, base.replace(/\/$/, ''), join(base, cfg.name));
  }
  const hier: V1Hierarchy[] = [];
  for (const [controller, mount] of Object.entries(layout.mounts)) {
    const own = opts.fromRoot ? '/' : (self.find((l) => l.controllers.includes(controller))?.path ?? '/');
    const base = join(mount, own).replace(/\/$/, '');
    hier.push({ controller, base, dir: join(base, cfg.name) });
  }
  return new V1CgroupManager(fs, hier);
}

/**
 * Rebuilds the manager of an existing cgroup from its recorded `paths()` and `name` (for a
 * process other than the one that created it, e.g. to clean up after a crashed run).
 */
export function cgroupManagerFromPaths(name: string, version: 1 | 2, paths: Record<string, string>, fs: CgroupFs = nodeCgroupFs): CgroupManager {
  checkName(name);
  const baseOf = (dir: string) => {
    if (!dir.endsWith(`/${name}`)) throw new RuntimeError('INVALID_SPEC', `cgroup path ${dir} does not end with ${name}`);
    return dir.slice(0, -(name.length + 1));
  };
  if (version === 2) {
    const dir = paths.unified;
    if (!dir) throw new RuntimeError('INVALID_SPEC', 'cgroup v2 paths have no unified entry');
    return new V2CgroupManager(fs, baseOf(dir), dir);
  }
  return new V1CgroupManager(fs, Object.entries(paths).map(([controller, dir]) => ({ controller, base: baseOf(dir), dir })));
}
