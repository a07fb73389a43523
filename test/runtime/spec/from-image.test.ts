import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ImageConfig } from '../../../src/oci/config.js';
import { specFromImage, type SpecOptions } from '../../../runtime/spec/from-image.js';
import { RuntimeError } from '../../../runtime/spec/errors.js';
import { capabilitiesFromMask, DEFAULT_CAPABILITIES } from '../../../runtime/spec/defaults.js';
import { resolveUser } from '../../../runtime/spec/user.js';

const GOLDEN = join(dirname(new URL(import.meta.url).pathname), '../../../testdata/runtime/spec');

const PASSWD = ['root:x:0:0:root:/root:/bin/sh', 'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin', 'app:x:1000:1000:App:/home/app:/bin/sh', 'nohome:x:1001:1001::'].join('\n');
const GROUP = ['root:x:0:', 'daemon:x:1:', 'app:x:1000:', 'wheel:x:10:app,root', 'audio:x:29:app', 'staff:x:50:'].join('\n');
const files: SpecOptions['readImageFile'] = (p) => (p === '/etc/passwd' ? PASSWD : GROUP);

function image(cfg: ImageConfig['config']): ImageConfig {
  return { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: cfg };
}

const base: SpecOptions = { id: '0123456789abcdef0123', rootfs: 'rootfs', readImageFile: files, kernelRelease: '6.1.0' };

const cases: Record<string, { config: ImageConfig; opts: Partial<SpecOptions> }> = {
  'default': { config: image({ Env: ['PATH=/usr/bin:/bin', 'A=1'], Cmd: ['sh'] }), opts: {} },
  'entrypoint-cmd': { config: image({ Entrypoint: ['/entry.sh'], Cmd: ['--flag'], WorkingDir: '/srv' }), opts: { seccomp: 'unconfined' } },
  'override-entrypoint': { config: image({ Entrypoint: ['/entry.sh'], Cmd: ['--flag'] }), opts: { entrypoint: ['/bin/echo'], cmd: ['hi'], seccomp: 'unconfined' } },
  'clear-entrypoint': { config: image({ Entrypoint: ['/entry.sh'], Cmd: ['x'] }), opts: { entrypoint: [], cmd: ['ls', '-l'], seccomp: 'unconfined' } },
  'user-name': { config: image({ Cmd: ['id'], User: 'app' }), opts: { seccomp: 'unconfined' } },
  'user-override-env-workdir': {
    config: image({ Cmd: ['id'], User: 'app', Env: ['HOME=/custom', 'B=2'] }),
    opts: { user: '1000:50', env: ['B=3', 'C=4'], workdir: '/tmp', hostname: 'box', terminal: true, seccomp: 'unconfined' },
  },
  'mounts-readonly': {
    config: image({ Cmd: ['sh'] }),
    opts: { readOnlyRootfs: true, binds: [{ source: '/srv/data', destination: '/data', readonly: true }, { source: '/srv/rw', destination: '/rw/' }], tmpfs: [{ destination: '/run', options: ['size=64m'] }, { destination: '/dev/shm' }], seccomp: 'unconfined' },
  },
  'resources': {
    config: image({ Cmd: ['sh'] }),
    opts: { resources: { memory: 64 * 1024 * 1024, cpus: 1.5, pidsLimit: 20, cpuShares: 512, cpusetCpus: '0-1', blkioWeight: 300 }, hostCpus: 2, seccomp: 'unconfined' },
  },
  'memory-swap-unlimited': { config: image({ Cmd: ['sh'] }), opts: { resources: { memory: 32 * 1024 * 1024, memorySwap: -1 }, seccomp: 'unconfined' } },
  'caps-network-host-init': {
    config: image({ Cmd: ['sh'] }),
    opts: { capAdd: ['sys_admin', 'CAP_NET_ADMIN', 'sys_resource'], capDrop: ['net_raw', 'MKNOD'], network: 'host', initPath: '/usr/bin/catatonit', noNewPrivileges: true, seccomp: 'unconfined', hostCapabilities: capabilitiesFromMask('000001fffeffffff') },
  },
  'caps-default-seccomp-sys-admin': { config: image({ Cmd: ['sh'] }), opts: { capAdd: ['SYS_ADMIN'] } },
  'etc-files-readonly': { config: image({ Cmd: ['sh'] }), opts: { readOnlyRootfs: true, etcFiles: { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' }, binds: [{ source: '/mine', destination: '/etc/hosts' }], seccomp: 'unconfined' } },
  'privileged': { config: image({ Cmd: ['sh'] }), opts: { privileged: true, hostCapabilities: capabilitiesFromMask('000001fffeffffff') } },
};

describe('specFromImage golden', () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const spec = specFromImage(c.config, { ...base, ...c.opts });
      const text = `${JSON.stringify(spec, null, 2)}\n`;
      const file = join(GOLDEN, `${name}.json`);
      if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
        if (process.env.UPDATE_GOLDEN !== '1' && process.env.CI) throw new Error(`golden file ${name}.json is missing`);
        mkdirSync(GOLDEN, { recursive: true });
        writeFileSync(file, text);
      }
      expect(text).toBe(readFileSync(file, 'utf8'));
    });
  }
});

describe('specFromImage semantics', () => {
  it('uses the image Env PATH and adds HOSTNAME and HOME', () => {
    const s = specFromImage(image({ Env: ['PATH=/x'], Cmd: ['sh'] }), base);
    expect(s.process!.env).toEqual(['PATH=/x', 'HOSTNAME=0123456789ab', 'HOME=/root']);
  });
  it('gives the default PATH when the image has none', () => {
    const s = specFromImage(image({ Cmd: ['sh'] }), base);
    expect(s.process!.env![0]).toBe('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });
  it('--entrypoint drops the image Cmd', () => {
    const s = specFromImage(image({ Entrypoint: ['/e'], Cmd: ['c'] }), { ...base, entrypoint: ['/x'] });
    expect(s.process!.args).toEqual(['/x']);
  });
  it('fails without a command, naming the problem', () => {
    expect(() => specFromImage(image({}), base)).toThrow(/no command specified/);
    try { specFromImage(image({}), base); } catch (e) { expect((e as RuntimeError).code).toBe('NO_COMMAND'); }
  });
  it('rejects memory below 6MB, swap below memory, cpus above the host, unknown capabilities, relative paths', () => {
    const img = image({ Cmd: ['sh'] });
    expect(() => specFromImage(img, { ...base, resources: { memory: 1024 } })).toThrow(/memory limit 1024/);
    expect(() => specFromImage(img, { ...base, resources: { memory: 64 << 20, memorySwap: 32 << 20 } })).toThrow(/memory-swap/);
    expect(() => specFromImage(img, { ...base, resources: { cpus: 3 }, hostCpus: 2 })).toThrow(/cpus 3 is out of range/);
    expect(() => specFromImage(img, { ...base, capAdd: ['NOPE'] })).toThrow(/unknown capability "NOPE"/);
    expect(() => specFromImage(img, { ...base, binds: [{ source: 'rel', destination: '/d' }] })).toThrow(/source rel/);
    expect(() => specFromImage(img, { ...base, tmpfs: [{ destination: 'run' }] })).toThrow(/tmpfs destination run/);
    expect(() => specFromImage(img, { ...base, workdir: 'w' })).toThrow(/working directory w/);
  });
  it('warns about and drops capabilities outside the host bounding set', () => {
    const warnings: string[] = [];
    const s = specFromImage(image({ Cmd: ['sh'] }), { ...base, capAdd: ['SYS_RESOURCE', 'SYS_ADMIN'], hostCapabilities: capabilitiesFromMask('000001fffeffffff'), onWarning: (w) => warnings.push(w) });
    expect(s.process!.capabilities!.bounding).toContain('CAP_SYS_ADMIN');
    expect(s.process!.capabilities!.bounding).not.toContain('CAP_SYS_RESOURCE');
    expect(warnings).toEqual(['capabilities not in the host bounding set were dropped: CAP_SYS_RESOURCE']);
  });
  it('has exactly the Docker default capabilities by default', () => {
    const s = specFromImage(image({ Cmd: ['sh'] }), base);
    expect([...s.process!.capabilities!.bounding!].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
  });
  it('--cap-drop ALL --cap-add one', () => {
    const s = specFromImage(image({ Cmd: ['sh'] }), { ...base, capDrop: ['ALL'], capAdd: ['chown'] });
    expect(s.process!.capabilities!.bounding).toEqual(['CAP_CHOWN']);
  });
  it('default seccomp denies namespace clone flags without SYS_ADMIN and allows them with it', () => {
    const plain = specFromImage(image({ Cmd: ['sh'] }), base).linux!.seccomp!;
    expect(plain.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(plain.defaultErrnoRet).toBe(1);
    expect(plain.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const names = (s: typeof plain) => new Set(s.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
    for (const n of ['keyctl', 'add_key', 'bpf', 'mount', 'unshare', 'kexec_load']) expect(names(plain).has(n)).toBe(false);
    expect(plain.syscalls!.find((r) => r.names.includes('clone'))!.args).toEqual([{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }]);
    const admin = specFromImage(image({ Cmd: ['sh'] }), { ...base, capAdd: ['SYS_ADMIN'] }).linux!.seccomp!;
    expect(names(admin).has('mount')).toBe(true);
    expect(names(admin).has('unshare')).toBe(true);
    expect(admin.syscalls!.find((r) => r.names.includes('clone') && r.args)).toBeUndefined();
  });
});

describe('resolveUser', () => {
  it('resolves names, numbers, groups and supplementary groups', () => {
    expect(resolveUser('', PASSWD, GROUP)).toEqual({ uid: 0, gid: 0, home: '/root', additionalGids: [10] });
    expect(resolveUser('app', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000, home: '/home/app', additionalGids: [10, 29] });
    expect(resolveUser('1000', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000, home: '/home/app', additionalGids: [10, 29] });
    expect(resolveUser('app:staff', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 50, home: '/home/app' });
    expect(resolveUser('1000:1000', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000, home: '/home/app' });
    expect(resolveUser('4242', PASSWD, GROUP)).toEqual({ uid: 4242, gid: 0, home: '/' });
    expect(resolveUser('4242:77', undefined, undefined)).toEqual({ uid: 4242, gid: 77, home: '/' });
    expect(resolveUser('nohome', PASSWD, GROUP)).toEqual({ uid: 1001, gid: 1001, home: '/' });
  });
  it('names the missing user or group', () => {
    expect(() => resolveUser('ghost', PASSWD, GROUP)).toThrow('unable to find user ghost: no matching entries in passwd file');
    expect(() => resolveUser('app:ghosts', PASSWD, GROUP)).toThrow('unable to find group ghosts');
    expect(() => resolveUser('ghost', undefined, undefined)).toThrow(/unable to find user ghost/);
    expect(() => resolveUser('app:', PASSWD, GROUP)).toThrow(/invalid user/);
    expect(() => resolveUser('99999999999', PASSWD, GROUP)).toThrow(/out of range/);
  });
});
