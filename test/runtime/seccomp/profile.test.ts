import { describe, expect, it } from 'vitest';
import { DEFAULT_SECCOMP_PROFILE } from '../../../runtime/seccomp/default-profile.js';
import { parseSeccompProfile, profileToSpec, type SeccompProfile } from '../../../runtime/seccomp/profile.js';
import { DEFAULT_CAPABILITIES } from '../../../runtime/spec/defaults.js';

const allowed = (p: SeccompProfile, ctx: Parameters<typeof profileToSpec>[1]) =>
  new Set(profileToSpec(p, ctx).syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));

describe('Docker default profile', () => {
  it('is an EPERM allowlist for x86_64 with its 32-bit sub-architectures', () => {
    const s = profileToSpec(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, arch: 'amd64' });
    expect(s.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(s.defaultErrnoRet).toBe(1);
    expect(s.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const a = allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, arch: 'amd64' });
    for (const n of ['read', 'write', 'openat', 'execve', 'wait4', 'arch_prctl', 'chown', 'setuid', 'socketpair']) expect(a.has(n), n).toBe(true);
    for (const n of ['keyctl', 'add_key', 'request_key', 'bpf', 'mount', 'umount2', 'unshare', 'setns', 'kexec_load', 'init_module', 'reboot', 'ptrace_not_a_syscall', 'open_by_handle_at', 'perf_event_open']) expect(a.has(n), n).toBe(false);
  });
  it('clone3 gets ENOSYS, clone is restricted by namespace flags, socket excludes AF_VSOCK, personality is narrowed', () => {
    const s = profileToSpec(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, arch: 'amd64' });
    expect(s.syscalls!.find((r) => r.names.includes('clone3'))).toEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    const clone = s.syscalls!.filter((r) => r.names.includes('clone'));
    expect(clone).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    const socket = s.syscalls!.filter((r) => r.names.includes('socket')).map((r) => r.args![0]);
    expect(socket).toContainEqual({ index: 0, value: 40, op: 'SCMP_CMP_GT' });
    expect(socket.some((a) => a.value === 40 && a.op === 'SCMP_CMP_EQ')).toBe(false);
    expect(s.syscalls!.filter((r) => r.names.includes('personality')).map((r) => r.args![0]!.value).sort((x, y) => x - y)).toEqual([0, 8, 131072, 131080, 4294967295]);
  });
  it('capabilities unlock their rules (CAP_SYS_ADMIN: mount, unshare, setns, plain clone; CAP_SYS_PTRACE: ptrace on any kernel)', () => {
    const admin = allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], arch: 'amd64' });
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3']) expect(admin.has(n), n).toBe(true);
    expect(allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: ['sys_module'], arch: 'amd64' }).has('init_module')).toBe(true);
  });
  it('minKernel drops rules for older kernels; arches select per architecture', () => {
    expect(allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: 'amd64', kernelRelease: '4.4.0' }).has('ptrace')).toBe(false);
    expect(allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: 'amd64', kernelRelease: '6.1.0-13-amd64' }).has('ptrace')).toBe(true);
    expect(allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: 'amd64' }).has('arch_prctl')).toBe(true);
    expect(allowed(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: 'arm64' }).has('arch_prctl')).toBe(false);
    expect(profileToSpec(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: 'arm64' }).architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });
});

describe('parseSeccompProfile', () => {
  it('accepts Docker-format and runtime-spec-format files', () => {
    const p = parseSeccompProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }, { name: 'rmdir', action: 'SCMP_ACT_ERRNO' }] }), 'p.json');
    expect(profileToSpec(p, { capabilities: [], arch: 'amd64' })).toEqual({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }, { names: ['rmdir'], action: 'SCMP_ACT_ERRNO' }],
    });
  });
  it('names the file and the problem', () => {
    expect(() => parseSeccompProfile('{', 'bad.json')).toThrow('parsing seccomp profile bad.json');
    expect(() => parseSeccompProfile('[]', 'arr.json')).toThrow('seccomp profile arr.json is not a JSON object');
    expect(() => parseSeccompProfile('{"defaultAction":"ALLOW"}', 'x.json')).toThrow('seccomp profile x.json has no valid defaultAction');
    expect(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"]}]}', 'y.json')).toThrow('seccomp profile y.json: syscalls[0] has no action');
  });
});
