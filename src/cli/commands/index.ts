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
  { name: 'fsck', group: 'images', summary: 'Verify every blob and image reference in the local store', load: () => import('./fsck.js') },
  { name: 'images', group: 'images', summary: 'List local images', load: () => import('./images.js') },
  { name: 'import', group: 'images', summary: 'Create a single-layer image from a rootfs tar or directory', load: () => import('./import.js') },
  { name: 'inspect', group: 'images', summary: 'Show config, history and manifest of local images', load: () => import('./inspect.js') },
  { name: 'load', group: 'images', summary: 'Load images from a docker-archive, OCI archive or OCI layout', load: () => import('./load.js') },
  { name: 'prune', group: 'images', summary: 'Remove untagged images and unreferenced blobs', load: () => import('./prune.js') },
  { name: 'rmi', group: 'images', summary: 'Remove local images', load: () => import('./rmi.js') },
  { name: 'save', group: 'images', summary: 'Save images to a docker-archive or OCI archive', load: () => import('./save.js') },
  { name: 'tag', group: 'images', summary: 'Give a local image another name', load: () => import('./tag.js') },
  { name: 'build', group: 'build', summary: 'Build an image from a Dockerfile', load: () => import('./build.js') },
  { name: 'builder', group: 'build', summary: 'Manage the build cache: prune', load: () => import('./builder.js') },
  { name: 'copy', group: 'registry', summary: 'Copy an image between registries, OCI layouts and the local store', load: () => import('./copy.js') },
  { name: 'login', group: 'registry', summary: 'Log in to a registry', load: () => import('./login.js') },
  { name: 'logout', group: 'registry', summary: 'Log out from a registry', load: () => import('./logout.js') },
  { name: 'pull', group: 'registry', summary: 'Pull an image from a registry', load: () => import('./pull.js') },
  { name: 'push', group: 'registry', summary: 'Push an image to a registry', load: () => import('./push.js') },
  { name: 'runtime', group: 'runtime', summary: 'OCI runtime: create, start, state, kill, delete, run, list, ps, pause, resume, exec', load: () => import('./runtime.js') },
  { name: 'attach', group: 'containers', summary: 'Attach to the output (and stdin) of a detached container', load: () => import('./attach.js') },
  { name: 'container', group: 'containers', summary: 'Container subcommands: inspect, ls', load: () => import('./container.js') },
  { name: 'cp', group: 'containers', summary: 'Copy files between a container and the host (or a tar stream)', load: () => import('./cp.js') },
  { name: 'exec', group: 'containers', summary: 'Run a command in a running container', load: () => import('./exec.js') },
  { name: 'kill', group: 'containers', summary: 'Send a signal to running containers', load: () => import('./kill.js') },
  { name: 'logs', group: 'containers', summary: 'Show the output of a container', load: () => import('./logs.js') },
  { name: 'network', group: 'containers', summary: 'Manage CNI networks: create, ls, rm, prune, inspect', load: () => import('./network.js') },
  { name: 'pause', group: 'containers', summary: 'Freeze every process of containers', load: () => import('./pause.js') },
  { name: 'port', group: 'containers', summary: 'List the published ports of a container', load: () => import('./port.js') },
  { name: 'ps', group: 'containers', summary: 'List containers', load: () => import('./ps.js') },
  { name: 'restart', group: 'containers', summary: 'Stop and start containers again, running or exited (same id, rootfs, network, log)', load: () => import('./restart.js') },
  { name: 'rm', group: 'containers', summary: 'Remove containers', load: () => import('./rm.js') },
  { name: 'run', group: 'containers', summary: 'Run a command in a new container from a local image', load: () => import('./run.js') },
  { name: 'start', group: 'containers', summary: 'Start stopped containers again (same id, name, rootfs, network, log)', load: () => import('./start.js') },
  { name: 'stats', group: 'containers', summary: 'CPU, memory, pids, network and block I/O of running containers', load: () => import('./stats.js') },
  { name: 'stop', group: 'containers', summary: 'Stop running containers (STOPSIGNAL, then SIGKILL)', load: () => import('./stop.js') },
  { name: 'top', group: 'containers', summary: 'List the processes of a container', load: () => import('./top.js') },
  { name: 'unpause', group: 'containers', summary: 'Thaw paused containers', load: () => import('./unpause.js') },
  { name: 'volume', group: 'containers', summary: 'Manage volumes: create, ls, inspect, rm, prune', load: () => import('./volume.js') },
  { name: 'wait', group: 'containers', summary: 'Wait for containers to exit and print their exit codes', load: () => import('./wait.js') },
  { name: 'attest', group: 'signing', summary: 'Attach a signed in-toto attestation to an image in a registry (cosign attest)', load: () => import('./attest.js') },
  { name: 'key', group: 'signing', summary: 'Generate cosign-compatible key pairs', load: () => import('./key.js') },
  { name: 'sbom', group: 'signing', summary: 'Generate an SPDX or CycloneDX SBOM of a local image from its package databases', load: () => import('./sbom.js') },
  { name: 'sign', group: 'signing', summary: 'Sign an image in a registry with a cosign key', load: () => import('./sign.js') },
  { name: 'verify', group: 'signing', summary: 'Verify cosign signatures of an image in a registry', load: () => import('./verify.js') },
  { name: 'verify-attestation', group: 'signing', summary: 'Verify cosign attestations of an image in a registry', load: () => import('./verify.js') },
  { name: 'system', group: 'system', summary: 'Disk use (df) and cleanup (prune: stopped containers, leftovers of crashed ones, dangling images)', load: () => import('./system.js') },
  { name: 'version', group: 'system', summary: 'Print version information', load: () => import('./version.js') },
];
