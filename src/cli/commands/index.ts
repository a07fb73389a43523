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
  { name: 'version', group: 'system', summary: 'Print version information', load: () => import('./version.js') },
];
