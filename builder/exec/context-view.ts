/**
 * The part of the build context a `RUN --mount=type=bind` (without `from`) shows: the source's
 * files that `.dockerignore` lets through, as BuildKit only ever receives the filtered context.
 * Read-only views hard-link the files where the file system allows (a copy otherwise);
 * read-write views are private copies (writes are discarded with them).
 */
import { chmod, copyFile, link, mkdir, stat, symlink, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { BuildContext } from '../context/context.js';
import { resolveInRoot } from './root-path.js';

/**
 * Builds the view of context path `source` at `dest` (which must not exist) and returns `dest`.
 * Symlinks are followed only inside the context; a missing or fully ignored source throws
 * the context's not-found error.
 */
export async function contextView(context: BuildContext, source: string, dest: string, writable: boolean): Promise<string> {
  const real = (await resolveInRoot(context.root, posix.normalize('/' + (source || '.')))).path.replace(/^\/+/, '');
  const [sel] = await context.select([real || '.']);
  const root = sel!.roots[0]!;
  const prefix = root.path === '' ? '' : root.path + '/';
  const dirs: { host: string; src: string }[] = [];
  for (const e of sel!.entries) {
    if (e.path !== root.path && !e.path.startsWith(prefix)) continue;
    const rel = e.path === root.path ? '' : e.path.slice(prefix.length);
    const to = rel ? join(dest, rel) : dest;
    const from = join(context.root, e.path);
    if (e.type === 'dir') {
      await mkdir(to, { recursive: true });
      await chmod(to, e.mode);
      dirs.push({ host: to, src: from });
    } else if (e.type === 'symlink') {
      await symlink(e.linkname ?? '', to);
    } else if (e.type === 'file') {
      if (writable) await copyFile(from, to);
      else await link(from, to).catch(() => copyFile(from, to));
      if (writable) await chmod(to, e.mode);
    }
  }
  // directory times as in the context (after their children were written)
  for (const d of dirs.reverse()) {
    const st = await stat(d.src).catch(() => undefined);
    if (st) await utimes(d.host, st.atime, st.mtime);
  }
  return dest;
}
