import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';

/** What every command gets from the global flags. */
export interface CliContext {
  /** The store root (images, blobs, containers, caches). */
  readonly root: string;
  readonly logger: Logger;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly debug: boolean;
}

/**
 * The store root: `--root`, else $TSBUILD_ROOT, else /var/lib/tsbuild for root,
 * else $XDG_DATA_HOME/tsbuild (default ~/.local/share/tsbuild).
 */
export function resolveRoot(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.TSBUILD_ROOT) return env.TSBUILD_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  const xdg = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'tsbuild');
}
