import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** `tsbuild version`: prints the version; loads nothing but package.json. */
export function register(cmd: Command, ctx: () => CliContext): void {
  cmd.option('--format <fmt>', 'output format: text or json', 'text').action((opts: { format: string }) => {
    const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const info = { version: pkg.version, node: process.versions.node, os: process.platform, arch: process.arch };
    ctx().stdout.write(opts.format === 'json' ? `${JSON.stringify(info)}\n` : `tsbuild ${info.version} (node ${info.node}, ${info.os}/${info.arch})\n`);
  });
}
