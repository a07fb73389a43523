import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { dirname, join } from 'node:path';
import type { ImageConfig } from '../src/oci/config.js';
import { ImageStore } from '../src/oci/store/image-store.js';
import { hasCode } from '../src/util/errors.js';
import { nullLogger, type Logger } from '../src/util/logger.js';
import { cgroupManagerFromPaths, createCgroupManager } from './cgroups/manager.js';
import type { CgroupManager } from './cgroups/types.js';
import { createContainer, loadContainer, type Container, type ContainerIO } from './container/container.js';
import { isSameProcess, processStartTime } from './container/state.js';
import type { LogRotation } from './monitor/json-log.js';
import { announceNetwork, attachNetwork, containerAddress, detachNetwork, networkGateway, type PortMapping } from './network/cni.js';
import { hostsContent, resolvConfContent, type ExtraHost } from './network/etc-files.js';
import { resolveHealthcheck, type HealthOverrides } from './health/health.js';
import type { RestartPolicy } from './monitor/restart.js';
import { containerInfo, exitCodeOf, generateName, ownedStatus, readRecord, writeRecord, writeStatus, type ContainerRecord } from './container/records.js';
import { prepareRootfs, unmount, type PreparedRootfs } from './rootfs/prepare.js';
import { readFileInRoot } from './rootfs/read-in-root.js';
import { SnapshotStore } from './rootfs/snapshots.js';
import type { MountRequest } from './volumes/mount-spec.js';
import { planMounts, type PlannedMounts } from './volumes/mounts.js';
import { removeAnonymousVolumes } from './volumes/store.js';
import { capabilitiesFromMask } from './spec/defaults.js';
import { RuntimeError, type RuntimeErrorCode } from './errors.js';
import { specFromImage, type BindMount, type ResourceOptions, type TmpfsMount } from './spec/from-image.js';
import { parseSeccompProfile, type SeccompProfile } from './seccomp/profile.js';

/** What `tsbuild run` asks for; every field is a parsed flag. */
export interface RunOptions {
  /** The store root (images, blobs, snapshots, containers). */
  root: string;
  /** Image name, id or digest in the local store. */
  image: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  name?: string;
  hostname?: string;
  binds?: BindMount[];
  tmpfs?: TmpfsMount[];
  /** -v and --mount (binds, named and anonymous volumes, tmpfs); the image's VOLUMEs get anonymous volumes. */
  mounts?: MountRequest[];
  readOnly?: boolean;
  resources?: ResourceOptions;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** `none` (default), `host`, or the name of a CNI network (`tsbuild` is the default bridge). */
  network?: string;
  /** Size cap of a detached container's json-file log; default 10 MiB per file, 3 files. */
  logRotation?: LogRotation;
  /** Published ports (docker -p); need a CNI network. hostPort 0: an ephemeral host port is picked. */
  publish?: PortMapping[];
  /** docker -P: publish every EXPOSEd port of the image (and `expose`) on an ephemeral host port. */
  publishAll?: boolean;
  /** docker --expose: more ports for -P (`80`, `53/udp`). */
  expose?: string[];
  /** docker --dns, --dns-search, --dns-option: replace the host's nameservers, search list, options in /etc/resolv.conf. */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** docker --add-host name:ip; ip `host-gateway` is the network's gateway (the bridge address). */
  addHosts?: { name: string; ip: string }[];
  /** docker --domainname (UTS domainname; also names the container in its /etc/hosts). */
  domainname?: string;
  /** docker --network-alias: more names the other containers of a user network resolve this one by. */
  networkAliases?: string[];
  /** `default`, `unconfined`, or a profile file path. */
  seccomp?: 'default' | 'unconfined' | { file: string };
  noNewPrivileges?: boolean;
  /** Run the helper's init as PID 1: it reaps zombies and forwards signals (docker run --init). */
  init?: boolean;
  /** Healthcheck flags (--health-*, --no-healthcheck) over the image's HEALTHCHECK; run by the monitor of a detached container. */
  health?: HealthOverrides;
  /** Restart policy (docker --restart), applied by the monitor of a detached container. */
  restartPolicy?: RestartPolicy;
  /** Detached: keep the container's stdin open for `attach` (docker run -d -i). */
  openStdin?: boolean;
  /** Parent of the container's cgroup, relative to the runtime's own cgroup (docker --cgroup-parent). Default `tsbuild`. */
  cgroupParent?: string;
  /**
   * Remove the container when it exits (docker --rm). Unset means remove too (library
   * callers such as tests); `false` keeps a stopped container listed until `rm`, as docker.
   */
  rm?: boolean;
  /**
   * Start the container under a detached monitor process and resolve at once (docker -d):
   * the monitor writes its output to the json-file log and records its exit.
   */
  detach?: boolean;
  io?: ContainerIO;
  /** Called once the container's process runs; the caller forwards its signals through `kill`. */
  onStarted?: (kill: (signal: NodeJS.Signals) => Promise<void>) => void;
  logger?: Logger;
  /** Cancels the run: before the container starts, setup stops and rejects with the abort reason; after, the container is SIGKILLed. */
  signal?: AbortSignal;
}

/** The outcome of a run. */
export interface RunResult {
  id: string;
  /** The container's name (given or generated). */
  name: string;
  /** Detached: the container runs on; exitCode is 0. */
  detached?: boolean;
  /** The container's exit status; 128+N when killed by signal N (137 after an OOM kill). */
  exitCode: number;
  signal?: string;
}


async function exists(p: string): Promise<boolean> {
  return fsp.access(p, fsConstants.F_OK).then(() => true, () => false);
}

/** The host's capability bounding set (CapBnd of this process). */
async function hostCapabilities(): Promise<string[] | undefined> {
  const status = await fsp.readFile('/proc/self/status', 'utf8').catch(() => '');
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  return m ? capabilitiesFromMask(m[1]!) : undefined;
}


/** Reserves a container name (O_EXCL file); returns its release function. */
async function reserveName(root: string, name: string, id: string): Promise<() => Promise<void>> {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new RuntimeError('INVALID_SPEC', `invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const dir = join(root, 'containers', 'names');
  await fsp.mkdir(dir, { recursive: true });
  const file = join(dir, name);
  try {
    await fsp.writeFile(file, id, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const other = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
    // a holder that died leaves its name behind: reclaim it when its container dir is gone
    if (other && (await exists(join(root, 'containers', other)))) {
      throw new RuntimeError('CONTAINER_EXISTS', `the container name ${name} is already in use by container ${other.slice(0, 12)}`);
    }
    await fsp.writeFile(file, id);
  }
  return () => fsp.rm(file, { force: true }).then(() => undefined);
}

/** Who runs a container directory: written first, so a crashed run can be recognised and reaped. */
interface OwnerRecord { pid: number; startTime: string; cgroupName: string; cgroup?: { version: 1 | 2; paths: Record<string, string> }; name?: string; secretDir?: string }

/**
 * Removes what runs that died without cleaning up (SIGKILL, power loss) left behind: for each
 * `<root>/containers/<id>` whose owner process is gone, unmounts the rootfs, removes the cgroup
 * (killing leftovers), the container state and the directory, and frees its name. A container
 * with a record (container.json) is instead marked exited (see containerInfo), and removed
 * only when it was started with --rm. Best effort; returns the ids removed.
 */
export async function reapStaleContainers(root: string, log: Logger = nullLogger): Promise<string[]> {
  const dir = join(root, 'containers');
  const ids = await fsp.readdir(dir).catch(() => [] as string[]);
  const reaped: string[] = [];
  for (const id of ids) {
    if (!/^[0-9a-f]{64}$/.test(id)) continue;
    const cdir = join(dir, id);
    // a container with a record: a dead owner means it exited (containerInfo records that)
    if (await readRecord(root, id)) {
      try {
        // undefined: an --rm container whose owner died, now removed
        if (!(await containerInfo(root, id))) reaped.push(id);
      } catch (e) {
        log.warn(`checking container ${id.slice(0, 12)}: ${(e as Error).message}`);
      }
      continue;
    }
    let owner: OwnerRecord | undefined;
    try {
      owner = JSON.parse(await fsp.readFile(join(cdir, 'owner.json'), 'utf8')) as OwnerRecord;
    } catch {
      // no owner record yet: a run that is just starting, or one that died before writing it
      const st = await fsp.stat(cdir).catch(() => undefined);
      if (!st || Date.now() - st.mtimeMs < 60_000) continue;
    }
    if (owner && isSameProcess(owner.pid, owner.startTime)) continue;
    try {
      unmount(join(cdir, 'rootfs'));
      await detachNetwork(root, id);
      if (owner?.cgroup) await cgroupManagerFromPaths(owner.cgroupName, owner.cgroup.version, owner.cgroup.paths).remove();
      // an owner killed before it recorded the paths: the cgroup sits where this process would put it
      else if (owner?.cgroupName) await (await createCgroupManager({ name: owner.cgroupName })).remove();
      // in-memory secrets of a killed build step (only a directory directly under /dev/shm)
      if (owner?.secretDir && dirname(owner.secretDir) === '/dev/shm') await fsp.rm(owner.secretDir, { recursive: true, force: true });
      await loadContainer(join(root, 'run'), id).then((c) => c.delete({ force: true }), () => undefined);
      await fsp.rm(cdir, { recursive: true, force: true });
      if (owner?.name) {
        const nameFile = join(dir, 'names', owner.name);
        if ((await fsp.readFile(nameFile, 'utf8').catch(() => '')).trim() === id) await fsp.rm(nameFile, { force: true });
      }
      reaped.push(id);
      log.debug(`removed the leftovers of container ${id.slice(0, 12)}`);
    } catch (e) {
      log.warn(`removing the leftovers of container ${id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }
  return reaped;
}

/** Path of the monitor's entry point (built JavaScript next to this module). */
function monitorMain(): string {
  return fileURLToPath(new URL('./monitor/main.js', import.meta.url));
}

/** A monitor process started ahead of the container's setup (see launchMonitor). */
interface MonitorLaunch {
  child: ReturnType<typeof spawn>;
  exited: Promise<void>;
  /** Early launch only: the pipe on which one byte says go. */
  go?: NodeJS.WritableStream & { destroy(): void };
}

/**
 * Spawns the monitor of container `id` (its directory must exist). `early`: the monitor loads
 * and then waits for one byte on fd 4 before it reads the record, so its start-up overlaps the
 * container's setup; the end of that pipe without a byte makes it exit doing nothing.
 */
async function launchMonitor(root: string, id: string, early: boolean): Promise<MonitorLaunch> {
  const main = monitorMain();
  if (!existsSync(main)) throw new RuntimeError('HELPER_NOT_FOUND', `the container monitor ${main} is missing (run npm run build)`);
  const errLog = await fsp.open(join(root, 'containers', id, 'monitor.log'), 'a');
  const child = spawn(process.execPath, ['--max-old-space-size=32', '--max-semi-space-size=1', main, root, id, ...(early ? ['--wait'] : [])], {
    detached: true, stdio: ['ignore', 'ignore', errLog.fd, 'pipe', ...(early ? ['pipe' as const] : [])], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(process.env.TSBUILD_HELPER ? { TSBUILD_HELPER: process.env.TSBUILD_HELPER } : {}),
      // the monitor's CNI DEL must find the plugins the run's ADD used
      ...(process.env.TSBUILD_CNI_PATH ? { TSBUILD_CNI_PATH: process.env.TSBUILD_CNI_PATH } : {}),
    },
  });
  await errLog.close();
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  const go = early ? (child.stdio[4] as NodeJS.WritableStream & { destroy(): void; on(e: 'error', f: () => void): unknown }) : undefined;
  go?.on('error', () => undefined);
  return { child, exited, ...(go ? { go } : {}) };
}

/** Ends an early-launched monitor that was never told to go, and waits for its exit. */
async function cancelMonitor(m: MonitorLaunch): Promise<void> {
  m.go?.destroy();
  m.child.kill('SIGKILL');
  await m.exited;
}

/**
 * Starts the detached monitor of a container whose record and bundle are written, and waits
 * for its report: resolves once the container runs, rejects with the monitor's error (after
 * the monitor has exited, so the caller may clean up).
 */
export async function startMonitor(root: string, id: string, signal?: AbortSignal): Promise<void> {
  await monitorReport(root, id, await launchMonitor(root, id, false), signal);
}

/** Waits for the report of a launched monitor (an early one is told to go first); see startMonitor. */
async function monitorReport(root: string, id: string, m: MonitorLaunch, signal?: AbortSignal): Promise<void> {
  const { child, exited } = m;
  const pipe = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  const onAbort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  let text = '';
  try {
    text = await new Promise<string>((resolve) => {
      let buf = '';
      pipe.on('data', (b: Buffer) => {
        buf += b.toString('utf8');
        if (buf.includes('\n')) resolve(buf);
      });
      pipe.on('end', () => resolve(buf));
      pipe.on('error', () => resolve(buf));
      void exited.then(() => setTimeout(() => resolve(buf), 50));
      m.go?.end('1');
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  let msg: { ok?: boolean; code?: string; message?: string; step?: string; errno?: string } = {};
  try {
    msg = JSON.parse(text.split('\n')[0] ?? '') as typeof msg;
  } catch {
    /* no report */
  }
  if (msg.ok) {
    pipe.destroy();
    m.go?.destroy();
    child.unref();
    return;
  }
  await exited;
  const log = await fsp.readFile(join(root, 'containers', id, 'monitor.log'), 'utf8').catch(() => '');
  throw new RuntimeError((msg.code as RuntimeErrorCode | undefined) ?? 'HELPER_FAILED', msg.message ?? `the container monitor ended without a report${log ? `: ${log.trim().split('\n').pop()}` : ''}`, {
    ...(msg.step ? { step: msg.step } : {}), ...(msg.errno ? { errno: msg.errno } : {}),
  });
}

/**
 * Runs an image from the local store like `docker run`: resolves the image, mounts an overlay
 * root over the shared layer snapshots, writes the bundle's config.json (specFromImage),
 * creates the cgroup, runs the container through the native helper, and always removes what
 * it made (container state, cgroup, mount, container dir). Resolves with the container's exit
 * status; rejects with a RuntimeError/ContentError naming the object when setup fails.
 */
export async function runImage(opts: RunOptions): Promise<RunResult> {
  const log = opts.logger ?? nullLogger;
  const id = randomBytes(32).toString('hex');

  // === validate host-side inputs before touching anything
  let seccomp: 'default' | 'unconfined' | SeccompProfile = 'default';
  if (opts.seccomp === 'unconfined') seccomp = 'unconfined';
  else if (opts.seccomp && typeof opts.seccomp === 'object') {
    const file = opts.seccomp.file;
    const text = await fsp.readFile(file, 'utf8').catch((e: unknown) => {
      throw new RuntimeError('INVALID_SECCOMP', `reading seccomp profile ${file}`, { cause: e });
    });
    seccomp = parseSeccompProfile(text, file);
  }
  for (const b of opts.binds ?? []) {
    if (!(await exists(b.source))) throw new RuntimeError('INVALID_MOUNT', `bind mount source path ${b.source} does not exist`);
  }

  const store = await ImageStore.open(opts.root);
  let config: ImageConfig;
  let image;
  let imageId: string | undefined;
  try {
    ({ image } = await store.imageFor(opts.image));
    config = await image.config();
    imageId = await image.configName();
  } catch (e) {
    if (hasCode(e, 'NOT_FOUND')) throw new RuntimeError('INVALID_SPEC', `unable to find image ${opts.image} in the local store`, { cause: e });
    throw e;
  }

  const containerDir = join(opts.root, 'containers', id);
  const cgroupName = `${opts.cgroupParent ?? 'tsbuild'}/${id}`;
  const cleanups: (() => Promise<unknown>)[] = [];
  // keep: the container ran and stays listed (no --rm); handedOver: a monitor owns it now
  let keep = false;
  let handedOver = false;
  let primary: unknown;
  let result: RunResult | undefined;
  try {
    await reapStaleContainers(opts.root, log);
    let name = opts.name;
    const unlessKept = (f: () => Promise<void>) => async () => { if (!keep && !handedOver) await f(); };
    if (name) cleanups.push(unlessKept(await reserveName(opts.root, name, id)));
    else {
      for (let i = 0; !name; i++) {
        const n = generateName(i);
        try {
          cleanups.push(unlessKept(await reserveName(opts.root, n, id)));
          name = n;
        } catch (e) {
          if (!hasCode(e, 'CONTAINER_EXISTS') || i > 50) throw e;
        }
      }
    }
    // anonymous volumes go last, once the container no longer lists them (docker run --rm)
    let planned: PlannedMounts | undefined;
    cleanups.push(async () => { if (!keep && !handedOver && planned?.anonymous.length) await removeAnonymousVolumes(opts.root, planned.anonymous); });
    await fsp.mkdir(containerDir, { recursive: true, mode: 0o700 });
    cleanups.push(async () => { if (!keep && !handedOver) await fsp.rm(containerDir, { recursive: true, force: true }); });
    // detached: the monitor's Node start-up runs while the container is set up; it waits for go
    let monitor: MonitorLaunch | undefined;
    if (opts.detach) {
      const m = await launchMonitor(opts.root, id, true);
      monitor = m;
      cleanups.push(async () => { if (!handedOver) await cancelMonitor(m); });
    }
    const owner: OwnerRecord = { pid: process.pid, startTime: processStartTime(process.pid) ?? '', cgroupName, name };

    await fsp.writeFile(join(containerDir, 'owner.json'), JSON.stringify(owner));

    // === rootfs
    opts.signal?.throwIfAborted();
    // --rm: the upper is thrown away, so the overlay need not sync it (no sync on unmount)
    const rootfs: PreparedRootfs = await prepareRootfs(new SnapshotStore(opts.root), image, containerDir, opts.signal, { volatile: opts.rm !== false });
    cleanups.push(async () => {
      if (handedOver) return;
      if (keep) unmount(rootfs.rootfs);
      else await rootfs.cleanup();
    });
    opts.signal?.throwIfAborted();

    // === volumes (created, copied up), binds and tmpfs from -v/--mount and the image's VOLUMEs
    planned = await planMounts(opts.root, rootfs.rootfs, opts.mounts ?? [], Object.keys(config.config?.Volumes ?? {}), [...(opts.tmpfs ?? []), ...(opts.binds ?? [])].map((m) => m.destination));

    // === /etc/hosts, /etc/hostname, /etc/resolv.conf (Docker writes them per container)
    const hostname = opts.hostname ?? id.slice(0, 12);
    const etcFiles = { hosts: join(containerDir, 'hosts'), hostname: join(containerDir, 'hostname'), resolvConf: join(containerDir, 'resolv.conf') };
    await fsp.writeFile(etcFiles.hostname, `${hostname}\n`);
    const hostHosts = opts.network === 'host' ? await fsp.readFile('/etc/hosts', 'utf8').catch(() => undefined) : undefined;
    // === CNI network: a named netns attached through the conflist's plugins
    const cniNetwork = opts.network && opts.network !== 'none' && opts.network !== 'host' ? opts.network : undefined;
    const publish = [...(opts.publish ?? [])];
    if (opts.publishAll) {
      // -P: every EXPOSEd port (and --expose) not published explicitly, on an ephemeral host port
      for (const e of [...Object.keys(config.config?.ExposedPorts ?? {}), ...(opts.expose ?? [])]) {
        const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(e);
        if (!m || !Number(m[1]) || Number(m[1]) > 65535) throw new RuntimeError('INVALID_SPEC', `invalid exposed port ${JSON.stringify(e)}: expected PORT[/tcp|udp]`);
        const containerPort = Number(m[1]);
        const protocol = (m[2] ?? 'tcp') as 'tcp' | 'udp';
        if (!publish.some((p) => p.containerPort === containerPort && p.protocol === protocol)) publish.push({ hostPort: 0, containerPort, protocol });
      }
    }
    if (publish.length && !cniNetwork) throw new RuntimeError('INVALID_SPEC', `published ports need a container network, not --network ${opts.network ?? 'none'}`);
    if (opts.networkAliases?.length && (!cniNetwork || cniNetwork === 'tsbuild')) throw new RuntimeError('INVALID_SPEC', 'network aliases need a user network (tsbuild network create), not the default one');
    let netnsPath: string | undefined;
    let address: string | undefined;
    let gateway: string | undefined;
    if (cniNetwork) {
      cleanups.push(async () => { if (!handedOver) await detachNetwork(opts.root, id); });
      const att = await attachNetwork(opts.root, id, cniNetwork, publish, { names: [name, ...(opts.networkAliases ?? [])], hostsFile: etcFiles.hosts });
      publish.splice(0, publish.length, ...att.ports);
      gateway = networkGateway(att);
      netnsPath = att.netns;
      address = containerAddress(att);
    }
    const extraHosts: ExtraHost[] = (opts.addHosts ?? []).map((h) => {
      if (h.ip !== 'host-gateway') return h;
      // with host networking the host is the container's own loopback
      const ip = opts.network === 'host' ? '127.0.0.1' : gateway;
      if (!ip) throw new RuntimeError('INVALID_SPEC', `--add-host ${h.name}:host-gateway needs a container network or host networking, not --network ${opts.network ?? 'none'}`);
      return { name: h.name, ip };
    });
    await fsp.writeFile(etcFiles.hosts, hostsContent({
      ...(hostHosts !== undefined ? { hostHosts } : {}), ...(address ? { address } : {}), hostname,
      ...(opts.domainname ? { domainname: opts.domainname } : {}), extraHosts,
    }));
    await fsp.writeFile(etcFiles.resolvConf, resolvConfContent(await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => ''), {
      // without a network of its own (host, none) the host's resolvers are kept as they are
      hostNetwork: !cniNetwork, servers: opts.dns ?? [], search: opts.dnsSearch ?? [], options: opts.dnsOptions ?? [],
    }));
    // the other containers of a user network learn this one's name (and it theirs)
    if (cniNetwork) await announceNetwork(opts.root, cniNetwork);

    // === spec
    const warnings: string[] = [];
    const hostCaps = await hostCapabilities();
    const passwd = await readFileInRoot(rootfs.rootfs, '/etc/passwd');
    const group = await readFileInRoot(rootfs.rootfs, '/etc/group');
    const spec = specFromImage(config, {
      id,
      rootfs: rootfs.rootfs,
      readImageFile: (p) => (p === '/etc/passwd' ? passwd : group),
      ...(opts.cmd ? { cmd: opts.cmd } : {}),
      ...(opts.entrypoint ? { entrypoint: opts.entrypoint } : {}),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.workdir ? { workdir: opts.workdir } : {}),
      ...(opts.user !== undefined ? { user: opts.user } : {}),
      hostname,
      etcFiles,
      readOnlyRootfs: !!opts.readOnly,
      binds: [...(opts.binds ?? []), ...planned.binds],
      tmpfs: [...(opts.tmpfs ?? []), ...planned.tmpfs],
      ...(opts.resources ? { resources: opts.resources } : {}),
      hostCpus: availableParallelism(),
      capAdd: opts.capAdd ?? [],
      capDrop: opts.capDrop ?? [],
      privileged: !!opts.privileged,
      ...(hostCaps ? { hostCapabilities: hostCaps } : {}),
      network: opts.network === 'host' ? 'host' : 'none',
      seccomp,
      kernelRelease: release(),
      noNewPrivileges: !!opts.noNewPrivileges,
      terminal: !!opts.io?.terminal,
      cgroupsPath: cgroupName,
      onWarning: (w) => warnings.push(w),
    });
    for (const w of warnings) log.warn(w);
    planned.applyTo(spec.mounts ?? []);
    if (netnsPath) for (const ns of spec.linux?.namespaces ?? []) if (ns.type === 'network') ns.path = netnsPath;
    if (opts.domainname) spec.domainname = opts.domainname;
    await fsp.writeFile(join(containerDir, 'config.json'), JSON.stringify(spec, null, 2));

    // === cgroup
    const cgroup: CgroupManager = await createCgroupManager({ name: cgroupName, resources: spec.linux!.resources! });
    cleanups.push(async () => { if (!handedOver) await cgroup.remove(); });
    owner.cgroup = { version: cgroup.version, paths: cgroup.paths() };
    await fsp.writeFile(join(containerDir, 'owner.json'), JSON.stringify(owner));
    await cgroup.create();
    try {
      await cgroup.apply(spec.linux!.resources!);
    } catch (e) {
      throw new RuntimeError('INVALID_RESOURCE', `applying resource limits to container ${id.slice(0, 12)}`, { cause: e });
    }

    // === the record (ps, logs, inspect): from here on the container is listed
    const record: ContainerRecord = {
      id, name, image: opts.image, ...(imageId ? { imageId } : {}), command: spec.process?.args ?? [], env: spec.process?.env ?? [],
      created: new Date().toISOString(), autoRemove: opts.rm !== false, tty: !!opts.io?.terminal, detached: !!opts.detach, init: !!opts.init,
      stopSignal: config.config?.StopSignal || 'SIGTERM', cgroupName, cgroup: owner.cgroup, hostname, network: opts.network ?? 'none',
      ports: publish, ...(address ? { address } : {}),
      logRotation: opts.logRotation ?? { maxSize: 10 * 1024 * 1024, maxFiles: 3 },
      ...(planned.records.length ? { mounts: planned.records } : {}),
      // what `start` needs to attach the network again exactly
      ...(opts.networkAliases?.length ? { networkAliases: opts.networkAliases } : {}),
      ...(opts.domainname ? { domainname: opts.domainname } : {}), ...(extraHosts.length ? { extraHosts } : {}),
    };
    const healthcheck = opts.detach ? resolveHealthcheck(config.config?.Healthcheck, opts.health) : undefined;
    if (healthcheck) record.healthcheck = healthcheck;
    if (opts.detach && opts.restartPolicy && opts.restartPolicy.Name !== 'no') record.restartPolicy = opts.restartPolicy;
    if (opts.detach && opts.openStdin) record.openStdin = true;
    await writeRecord(opts.root, record);
    await writeStatus(opts.root, id, ownedStatus('created'));

    // === run
    opts.signal?.throwIfAborted();
    if (opts.detach) {
      await monitorReport(opts.root, id, monitor ?? (await launchMonitor(opts.root, id, false)), opts.signal);
      handedOver = true;
      result = { id, name, exitCode: 0, detached: true };
    } else {
      const { terminal: _t, ...io } = opts.io ?? {};
      const container: Container = await createContainer({ id, bundle: containerDir, stateRoot: join(opts.root, 'run'), cgroup, cgroupName, init: !!opts.init, logger: log, io });
      cleanups.push(() => container.delete({ force: true }));
      const onAbort = () => void container.kill('SIGKILL').catch(() => undefined);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        opts.signal?.throwIfAborted();
        await container.start();
        const startedAt = new Date().toISOString();
        const pid = (await container.state()).pid;
        await writeStatus(opts.root, id, ownedStatus('running', { ...(pid ? { pid } : {}), startedAt }));
        opts.onStarted?.((sig) => container.kill(sig));
        const r = await container.wait();
        result = { id, name, exitCode: exitCodeOf(r), ...(r.signal ? { signal: r.signal } : {}) };
        if (opts.rm === false) {
          keep = true;
          await writeStatus(opts.root, id, {
            status: 'exited', ...(pid ? { pid } : {}), startedAt, finishedAt: new Date().toISOString(),
            exitCode: result.exitCode, ...(r.signal ? { signal: r.signal } : {}),
          });
        }
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }
  } catch (e) {
    primary = e;
  }
  // === cleanup, newest first; a cleanup failure never hides the primary error
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (e) {
      if (primary) {
        const p = primary as { cleanupError?: unknown };
        if (typeof primary === 'object' && p.cleanupError === undefined) p.cleanupError = e;
      } else primary = e;
    }
  }
  if (primary) throw primary;
  return result!;
}
