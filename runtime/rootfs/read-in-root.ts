import { lstat, readFile, readlink } from 'node:fs/promises';
import { posix } from 'node:path';

/**
 * Reads `path` inside the directory tree `root` as the container would see it: symlinks
 * (absolute or relative) are resolved against `root`, never the host, with Linux's limit of 40.
 * Returns undefined when the file does not exist. Used to read the image's /etc/passwd.
 */
export async function readFileInRoot(root: string, path: string): Promise<string | undefined> {
  let parts = posix.normalize(path).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (parts.length) {
    const p = parts.shift()!;
    if (p === '..') { done.pop(); continue; }
    if (p === '.') continue;
    const host = `${root}/${[...done, p].join('/')}`;
    let st;
    try {
      st = await lstat(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) return undefined;
      const t = await readlink(host);
      const rest = t.split('/').filter(Boolean);
      if (t.startsWith('/')) done.length = 0;
      parts = [...rest, ...parts];
      continue;
    }
    done.push(p);
  }
  try {
    return await readFile(`${root}/${done.join('/')}`, 'utf8');
  } catch {
    return undefined;
  }
}
