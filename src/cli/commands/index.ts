import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/**
 * A subcommand module: defines its flags on `cmd` and its action. Modules are imported only
 * when their command runs, so `tsbuild --help` and `tsbuild version` load nothing heavy.
 */
export interface CommandModule {
  register(cmd: Command, ctx: () => CliContext): void;
}

/** One row of the command table. */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  readonly group: 'images' | 'build' | 'registry' | 'containers' | 'runtime' | 'signing' | 'system';
  readonly load: () => Promise<CommandModule>;
}

/** Every tsbuild command. Keep sorted within each group; add a row per new command file. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'copy', group: 'registry', summary: 'Copy an image between registries, OCI layouts and the local store', load: () => import('./copy.js') },
  { name: 'login', group: 'registry', summary: 'Log in to a registry', load: () => import('./login.js') },
  { name: 'logout', group: 'registry', summary: 'Log out from a registry', load: () => import('./logout.js') },
  { name: 'pull', group: 'registry', summary: 'Pull an image from a registry', load: () => import('./pull.js') },
  { name: 'push', group: 'registry', summary: 'Push an image to a registry', load: () => import('./push.js') },
  { name: 'runtime', group: 'runtime', summary: 'OCI runtime: create, start, state, kill, delete, run, list, ps, pause, resume, exec', load: () => import('./runtime.js') },
  { name: 'version', group: 'system', summary: 'Print version information', load: () => import('./version.js') },
];
