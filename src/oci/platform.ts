/**
 * Platform of an image (image-spec image-index.md, `platform` field).
 * https://github.com/opencontainers/image-spec/blob/main/image-index.md
 */
export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
  readonly variant?: string;
  readonly features?: readonly string[];
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The platform this process runs on, in OCI/Go naming (linux/amd64). */
export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture };
  if (architecture === 'arm64') return { ...p, variant: 'v8' };
  return p;
}

/** Formats `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Parses `os/arch[/variant]` (e.g. linux/arm64/v8). */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new Error(`invalid platform ${JSON.stringify(s)}: want os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** True when `candidate` satisfies `want` (os and arch equal; variant equal when `want` has one). */
export function platformMatches(want: Platform, candidate: Platform | undefined): boolean {
  if (!candidate) return false;
  if (want.os !== candidate.os || want.architecture !== candidate.architecture) return false;
  if (want.variant && candidate.variant && want.variant !== candidate.variant) return false;
  return true;
}
