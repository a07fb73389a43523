import type { LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall } from '../spec/types.js';
import { RuntimeError } from '../spec/errors.js';

/**
 * A seccomp profile in Docker's file format (`--security-opt seccomp=FILE`): the runtime-spec
 * fields plus `archMap` and per-rule `includes`/`excludes` conditions.
 * https://github.com/moby/profiles/blob/main/seccomp/types.go
 */
export interface SeccompProfile {
  defaultAction: LinuxSeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: SeccompRule[];
}

/** One rule of a Docker-format profile. */
export interface SeccompRule {
  names?: string[];
  /** Old single-name form. */
  name?: string;
  action: LinuxSeccompAction;
  errnoRet?: number;
  args?: LinuxSeccompArg[] | null;
  comment?: string;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
}

/** Rule condition: Go architecture names, capability names, minimum kernel "major.minor". */
export interface SeccompFilter {
  arches?: string[];
  caps?: string[];
  minKernel?: string;
}

/** What a profile is resolved against. */
export interface ProfileContext {
  /** Capabilities granted to the process (`CAP_` names, any case). */
  capabilities: readonly string[];
  /** Go-style architecture of the container (amd64, arm64, 386, ...). Default: the host's. */
  arch?: string;
  /** Kernel release ("6.1.0-13-amd64"); rules with a higher `minKernel` are dropped. Unset: keep all. */
  kernelRelease?: string;
}

const NODE_TO_GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le' };
const GO_TO_SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', '386': 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', s390x: 'SCMP_ARCH_S390X',
  ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64', loong64: 'SCMP_ARCH_LOONGARCH64', mips64le: 'SCMP_ARCH_MIPSEL64', mips64: 'SCMP_ARCH_MIPS64',
};

/** The Go architecture name of this Node process (amd64 on x86_64). */
export function hostGoArch(): string {
  return NODE_TO_GO_ARCH[process.arch] ?? process.arch;
}

function parseKernel(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function kernelAtLeast(release: string | undefined, min: string): boolean {
  if (!release) return true;
  const have = parseKernel(release);
  const want = parseKernel(min);
  if (!have || !want) return true;
  return have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]);
}

/**
 * Resolves a Docker-format profile into the runtime-spec `linux.seccomp` object for one
 * architecture and capability set (moby `setupSeccomp`): rules whose `includes` do not all hold
 * or whose `excludes` match are dropped; `architectures` comes from `archMap` (native arch plus
 * its sub-architectures). Pure.
 */
export function profileToSpec(profile: SeccompProfile, ctx: ProfileContext): LinuxSeccomp {
  const arch = ctx.arch ?? hostGoArch();
  const caps = new Set(ctx.capabilities.map((c) => normalizeCap(c)));
  const scmpArch = GO_TO_SCMP_ARCH[arch];
  let architectures: string[] = [];
  if (profile.architectures?.length) architectures = [...profile.architectures];
  else if (profile.archMap && scmpArch) {
    for (const a of profile.archMap) {
      if (a.architecture === scmpArch) architectures = [a.architecture, ...(a.subArchitectures ?? [])];
    }
  }
  const syscalls: LinuxSyscall[] = [];
  for (const [i, rule] of (profile.syscalls ?? []).entries()) {
    const names = rule.names ?? (rule.name ? [rule.name] : []);
    if (names.length === 0) throw new RuntimeError('INVALID_SECCOMP', `seccomp profile rule ${i} has no syscall names`);
    const inc = rule.includes;
    if (inc) {
      if (inc.arches?.length && !inc.arches.includes(arch)) continue;
      if (inc.caps?.length && !inc.caps.every((c) => caps.has(normalizeCap(c)))) continue;
      if (inc.minKernel && !kernelAtLeast(ctx.kernelRelease, inc.minKernel)) continue;
    }
    const exc = rule.excludes;
    if (exc) {
      if (exc.arches?.includes(arch)) continue;
      if (exc.caps?.some((c) => caps.has(normalizeCap(c)))) continue;
    }
    const out: LinuxSyscall = { names: [...names], action: rule.action };
    if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length) out.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(out);
  }
  const spec: LinuxSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) spec.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures.length) spec.architectures = architectures;
  if (profile.flags?.length) spec.flags = [...profile.flags];
  if (profile.listenerPath) spec.listenerPath = profile.listenerPath;
  spec.syscalls = syscalls;
  return spec;
}

/**
 * Parses the text of a `--security-opt seccomp=FILE` profile (Docker format, or plain
 * runtime-spec `linux.seccomp`). Throws RuntimeError INVALID_SECCOMP naming `source`.
 */
export function parseSeccompProfile(text: string, source: string): SeccompProfile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new RuntimeError('INVALID_SECCOMP', `parsing seccomp profile ${source}`, { cause: e });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RuntimeError('INVALID_SECCOMP', `seccomp profile ${source} is not a JSON object`);
  const p = v as Record<string, unknown>;
  if (typeof p.defaultAction !== 'string' || !p.defaultAction.startsWith('SCMP_ACT_')) {
    throw new RuntimeError('INVALID_SECCOMP', `seccomp profile ${source} has no valid defaultAction`);
  }
  if (p.syscalls !== undefined && p.syscalls !== null && !Array.isArray(p.syscalls)) {
    throw new RuntimeError('INVALID_SECCOMP', `seccomp profile ${source}: syscalls is not an array`);
  }
  for (const [i, r] of ((p.syscalls as unknown[] | null) ?? []).entries()) {
    const rule = r as Record<string, unknown> | null;
    if (!rule || typeof rule.action !== 'string') throw new RuntimeError('INVALID_SECCOMP', `seccomp profile ${source}: syscalls[${i}] has no action`);
    if (!Array.isArray(rule.names) && typeof rule.name !== 'string') throw new RuntimeError('INVALID_SECCOMP', `seccomp profile ${source}: syscalls[${i}] has no names`);
  }
  return p as unknown as SeccompProfile;
}

/** `chown` / `CAP_CHOWN` / `cap_chown` → `CAP_CHOWN`. */
export function normalizeCap(c: string): string {
  const u = c.trim().toUpperCase();
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}
