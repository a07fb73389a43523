import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Built artefacts of native/. */
export const HELPER = fileURLToPath(new URL('../../../native/build/tsbuild-helper', import.meta.url));
export const TEST_INIT = fileURLToPath(new URL('../../../native/build/test-init', import.meta.url));

/** Why the native runtime tests cannot run here, or undefined. */
export function nativeSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts)';
  if (!existsSync(HELPER) || !existsSync(TEST_INIT)) return 'native/build is not built (npm run build)';
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed (/bin/busybox)';
  return undefined;
}

/** The capabilities runc's default spec gives. */
export const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** A runc-`spec`-like config (field names verbatim), running `args`. */
export function testSpec(args: string[], hostname = 'tsbuild-test'): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS, ambient: DEFAULT_CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** A small seccomp profile: allow all but the keyring syscalls (EPERM). */
export const TEST_SECCOMP = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    { names: ['keyctl', 'add_key', 'request_key'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
    { names: ['kexec_load'], action: 'SCMP_ACT_ERRNO' },
  ],
};

/** A temp dir with a busybox rootfs (+ test-init as /bin/test-init). `remove()` deletes it. */
export interface TestBundle {
  readonly dir: string;
  /** Writes config.json. */
  writeSpec(spec: unknown): void;
  remove(): void;
}

/** Makes a bundle: busybox --install -s into rootfs/bin, test-init copied in, passwd/group. */
export function makeBundle(prefix = 'tsbuild-native-'): TestBundle {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // a user-namespaced root must be able to reach the rootfs
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  execFileSync('chroot', [rootfs, '/bin/busybox', '--install', '-s', '/bin']);
  copyFileSync(TEST_INIT, join(rootfs, 'bin/test-init'));
  execFileSync('chmod', ['755', join(rootfs, 'bin/test-init'), join(rootfs, 'bin/busybox')]);
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  return {
    dir,
    writeSpec: (spec) => writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
