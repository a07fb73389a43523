import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { nodeCgroupFs, type CgroupFs } from '../../../runtime/cgroups/fs.js';

const TESTDATA = join(dirname(new URL(import.meta.url).pathname), '../../../testdata/cgroup');

/** Copies testdata/cgroup/<name> to a temp dir; returns it and a disposer. */
export function copyTree(name: 'v1' | 'v2' | 'hybrid'): { root: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tsbuild-cgfake-${name}-`));
  cpSync(join(TESTDATA, name), dir, { recursive: true });
  return { root: dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A cgroupfs emulation on a temp dir: new directories get the control files of their
 * hierarchy's root (cgroup.procs and cpuset values empty, cgroup.controllers = parent's
 * subtree_control on v2), writes never create files, rmdir refuses populated or nested cgroups,
 * and writing cgroup.freeze updates cgroup.events like the kernel.
 */
export function fakeCgroupFs(fsRoot: string, version: 1 | 2): CgroupFs & { writes: [string, string][] } {
  const writes: [string, string][] = [];
  const templateOf = (dir: string): string => (version === 2 ? fsRoot : join(fsRoot, relative(fsRoot, dir).split('/')[0]!));
  return {
    ...nodeCgroupFs,
    writes,
    async read(p) {
      // v2: a child's cgroup.controllers is whatever its parent enabled in cgroup.subtree_control
      if (version === 2 && p.endsWith('/cgroup.controllers') && dirname(p) !== fsRoot && existsSync(join(dirname(dirname(p)), 'cgroup.subtree_control')) && existsSync(p)) {
        return readFileSync(join(dirname(dirname(p)), 'cgroup.subtree_control'), 'utf8');
      }
      return nodeCgroupFs.read(p);
    },
    async write(p, v) {
      writes.push([relative(fsRoot, p), v]);
      if (p.endsWith('/cgroup.subtree_control')) {
        const on = new Set(readFileSync(p, 'utf8').split(/\s+/).filter(Boolean));
        for (const w of v.split(/\s+/)) if (w.startsWith('+')) on.add(w.slice(1)); else if (w.startsWith('-')) on.delete(w.slice(1));
        v = [...on].join(' ');
      }
      await nodeCgroupFs.write(p, v);
      if (p.endsWith('/cgroup.freeze')) writeFileSync(join(dirname(p), 'cgroup.events'), `populated 0\nfrozen ${v.trim()}\n`);
    },
    async mkdirp(p) {
      const first = await nodeCgroupFs.mkdirp(p);
      if (!first) return first;
      const tpl = templateOf(p);
      const rel = relative(dirname(first), p).split('/');
      let cur = dirname(first);
      for (const part of rel) {
        const parent = cur;
        cur = join(cur, part);
        for (const f of readdirSync(tpl)) {
          if (!statSync(join(tpl, f)).isFile()) continue;
          let content = readFileSync(join(tpl, f), 'utf8');
          if (f === 'cgroup.procs' || f === 'cgroup.subtree_control' || f.startsWith('cpuset.')) content = '';
          if (f === 'cgroup.controllers') content = existsSync(join(parent, 'cgroup.subtree_control')) ? readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').replace(/\+/g, '') : '';
          writeFileSync(join(cur, f), content);
        }
      }
      return first;
    },
    async rmdir(p) {
      if (!existsSync(p)) throw Object.assign(new Error(`rmdir ${p}`), { code: 'ENOENT' });
      if (readdirSync(p).some((f) => statSync(join(p, f)).isDirectory())) throw Object.assign(new Error(`rmdir ${p}`), { code: 'EBUSY' });
      if (readFileSync(join(p, 'cgroup.procs'), 'utf8').trim()) throw Object.assign(new Error(`rmdir ${p}`), { code: 'EBUSY' });
      rmSync(p, { recursive: true });
    },
  };
}

/** Lists every directory under root (relative), for "nothing left behind" checks. */
export function listDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) { out.push(relative(root, p)); walk(p); }
    }
  };
  walk(root);
  return out.sort();
}

export { mkdirSync };
