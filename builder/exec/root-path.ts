/**
 * Path handling inside a container root from the host side: every lookup follows symlinks
 * *within* the root (an absolute link target is taken relative to the root, `..` never climbs
 * above it), so writing into a build root can never touch the host.
 */
import { lstat, mkdir, readFile, readlink, chown } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { BuildError } from './errors.js';

const MAX_LINKS = 40;

/**
 * Resolves `p` (absolute container path) in `root`. Symlinks in every component but the last
 * are followed inside the root; the last too when `followLast`. Returns the host path and the
 * container path it resolved to. Missing components are fine (the rest is appended as is).
 */
export async function resolveInRoot(root: string, p: string, followLast = true): Promise<{ host: string; path: string }> {
  const todo = posix.normalize('/' + p).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    const cur = '/' + [...done, name].join('/');
    const last = todo.length === 0;
    const st = await lstat(join(root, cur)).catch(() => undefined);
    if (st?.isSymbolicLink() && (!last || followLast)) {
      if (++links > MAX_LINKS) throw new BuildError('STEP_FAILED', `too many levels of symbolic links resolving ${p}`);
      const target = await readlink(join(root, cur));
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(name);
    if (!st) {
      // missing: the rest cannot contain links
      done.push(...todo.filter((x) => x !== '.' && x !== ''));
      const norm = posix.normalize('/' + done.join('/'));
      return { host: join(root, norm), path: norm };
    }
  }
  const path = '/' + done.join('/');
  return { host: join(root, path), path };
}

/**
 * Creates directory `p` and its missing parents inside `root` (mode 0755, owned by
 * `uid:gid`); returns the host path. Existing components are kept as they are.
 */
export async function mkdirAllInRoot(root: string, p: string, owner: { uid: number; gid: number }, mode = 0o755): Promise<string> {
  const parts = posix.normalize('/' + p).split('/').filter(Boolean);
  let cur = '/';
  for (const part of parts) {
    const r = await resolveInRoot(root, posix.join(cur, part));
    const st = await lstat(r.host).catch(() => undefined);
    if (!st && r.path !== posix.join(cur, part)) {
      // a dangling symlink: create its target (a resolved path, no links left to follow)
      await mkdirAllInRoot(root, r.path, owner, mode);
    } else if (!st) {
      await mkdir(r.host, { mode });
      await chown(r.host, owner.uid, owner.gid);
    } else if (!st.isDirectory()) {
      throw new BuildError('STEP_FAILED', `cannot create directory ${p}: ${r.path} exists and is not a directory`);
    }
    cur = r.path;
  }
  return (await resolveInRoot(root, cur)).host;
}

/** Reads a file of the root (following links inside it); undefined when missing. */
export async function readFileInRoot(root: string, p: string): Promise<string | undefined> {
  const r = await resolveInRoot(root, p);
  return readFile(r.host, 'utf8').catch(() => undefined);
}

function lookup(text: string | undefined, name: string): string[] | undefined {
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3) return f;
  }
  return undefined;
}

/**
 * Resolves `user[:group]` like buildkit's chown/WORKDIR handling: a name is looked up in the
 * root's /etc/passwd (its primary group is the default group), a number stands for itself and
 * then also for the group; a group name is looked up in /etc/group. '' is root.
 */
export async function resolveOwner(root: string, spec: string): Promise<{ uid: number; gid: number }> {
  if (spec === '') return { uid: 0, gid: 0 };
  const i = spec.indexOf(':');
  const u = i < 0 ? spec : spec.slice(0, i);
  const g = i < 0 ? undefined : spec.slice(i + 1);
  let uid: number;
  let gid: number;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    gid = uid;
  } else {
    const f = lookup(await readFileInRoot(root, '/etc/passwd'), u);
    if (!f) throw new BuildError('STEP_FAILED', `unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(f[2]);
    gid = Number(f[3] ?? f[2]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const f = lookup(await readFileInRoot(root, '/etc/group'), g);
      if (!f) throw new BuildError('STEP_FAILED', `unable to find group ${g}: no matching entries in group file`);
      gid = Number(f[2]);
    }
  }
  return { uid, gid };
}
