#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.js';
import { resolveRoot, type CliContext } from './context.js';
import { errorMessage, exitStatusFor, finish } from './exit.js';
import { streamLogger } from '../util/logger.js';

/** Entry point: parse global flags, load only the command asked for, map errors to exit codes. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('tsbuild')
    .description('Build, run, push and sign OCI container images')
    .option('--root <dir>', 'store root (default: /var/lib/tsbuild as root, else $XDG_DATA_HOME/tsbuild; env TSBUILD_ROOT)')
    .option('--log-level <level>', 'debug, info or warn', 'info')
    .option('--debug', 'print error codes and stacks')
    .showHelpAfterError()
    .exitOverride();
  program.configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });

  let ctx: CliContext | undefined;
  const getCtx = (): CliContext => {
    if (!ctx) {
      const g = program.opts<{ root?: string; logLevel: string; debug?: boolean }>();
      const level = g.debug ? 'debug' : (g.logLevel as 'debug' | 'info' | 'warn');
      ctx = { root: resolveRoot(g.root), logger: streamLogger(process.stderr, level), stdout: process.stdout, stderr: process.stderr, debug: !!g.debug };
    }
    return ctx;
  };

  // Find the subcommand word (first non-flag argument after global flags that take values).
  const args = argv.slice(2);
  let name: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--root' || a === '--log-level') { i++; continue; }
    if (a.startsWith('-')) continue;
    name = a;
    break;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  for (const c of COMMANDS) {
    if (c === entry) {
      const mod = await c.load();
      const cmd = program.command(c.name).description(c.summary).exitOverride();
      mod.register(cmd, getCtx);
    } else {
      program.command(c.name).description(c.summary);
    }
  }
  try {
    await program.parseAsync(argv as string[]);
  } catch (e) {
    if (e instanceof CommanderError) {
      finish(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? 0 : 2);
      return;
    }
    const debug = !!program.opts<{ debug?: boolean }>().debug;
    const status = exitStatusFor(e);
    if (!(e instanceof Error && e.name === 'ExitStatus')) process.stderr.write(`${errorMessage(e, debug)}\n`);
    finish(status);
  }
}

await main(process.argv);
