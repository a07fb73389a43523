/**
 * Installed packages and OS identification from an image's own databases: dpkg
 * (`var/lib/dpkg/status`, `var/lib/dpkg/status.d/*` as distroless images have), apk
 * (`lib/apk/db/installed`) and os-release (`etc/os-release`, else `usr/lib/os-release`).
 */
import type { Image } from '../../oci/image.js';
import { readImageFiles } from './image-files.js';

/** The OS an image says it is (os-release fields). */
export interface OsRelease {
  /** `ID`, e.g. `debian`, `alpine`. */
  readonly id: string;
  /** `VERSION_ID`, e.g. `12`, `3.19.1`. */
  readonly versionId?: string;
  readonly prettyName?: string;
  readonly versionCodename?: string;
  /**
   * The full release from the distribution's own file when it has one (`etc/debian_version`
   * `12.5`, `etc/alpine-release` `3.19.1`), else VERSION_ID. Used in purls, as Trivy does.
   */
  readonly release?: string;
}

/** One installed package. */
export interface InstalledPackage {
  readonly type: 'deb' | 'apk';
  readonly name: string;
  readonly version: string;
  readonly architecture?: string;
  /** Source package name (dpkg `Source`, apk origin). */
  readonly source?: string;
  readonly sourceVersion?: string;
  readonly maintainer?: string;
  readonly license?: string;
  readonly description?: string;
  readonly homepage?: string;
  /** Package URL (https://github.com/package-url/purl-spec). */
  readonly purl: string;
}

/** What {@link scanImage} found. */
export interface ImageInventory {
  readonly os?: OsRelease;
  readonly packages: readonly InstalledPackage[];
}

const DPKG_STATUS = 'var/lib/dpkg/status';
const DPKG_STATUS_D = 'var/lib/dpkg/status.d/';
const APK_INSTALLED = 'lib/apk/db/installed';
const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];
const RELEASE_FILES: Readonly<Record<string, string>> = { debian: 'etc/debian_version', alpine: 'etc/alpine-release' };

function isWanted(p: string): boolean {
  return p === DPKG_STATUS || p === APK_INSTALLED || OS_RELEASE.includes(p) || Object.values(RELEASE_FILES).includes(p) || (p.startsWith(DPKG_STATUS_D) && !p.endsWith('.md5sums') && !p.slice(DPKG_STATUS_D.length).includes('/'));
}

/** Parses os-release text (shell-style `KEY=value` with optional quotes). */
export function parseOsRelease(text: string): OsRelease | undefined {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2] as string;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["$`\\])/g, '$1');
    kv.set(m[1] as string, v);
  }
  const id = kv.get('ID');
  if (!id) return undefined;
  const out: { id: string; versionId?: string; prettyName?: string; versionCodename?: string } = { id };
  if (kv.get('VERSION_ID')) out.versionId = kv.get('VERSION_ID') as string;
  if (kv.get('PRETTY_NAME')) out.prettyName = kv.get('PRETTY_NAME') as string;
  if (kv.get('VERSION_CODENAME')) out.versionCodename = kv.get('VERSION_CODENAME') as string;
  return out;
}

/** Splits a deb822 control file into paragraphs of fields (continuation lines joined with `\n`). */
export function parseDeb822(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur.size) out.push(cur);
      cur = new Map();
      last = undefined;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      cur.set(last, `${cur.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i);
    cur.set(last, line.slice(i + 1).trim());
  }
  if (cur.size) out.push(cur);
  return out;
}

/** purl percent-encoding of a name or version segment. */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, '%3A');
}

/** A package URL: `pkg:<type>/<namespace>/<name>@<version>?<sorted qualifiers>`. */
export function purl(type: string, namespace: string | undefined, name: string, version: string, qualifiers: Record<string, string | undefined>): string {
  const q = Object.entries(qualifiers)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${enc(v)}`)
    .join('&');
  return `pkg:${type}/${namespace ? `${enc(namespace)}/` : ''}${enc(name)}@${enc(version)}${q ? `?${q}` : ''}`;
}

function distro(os: OsRelease | undefined): string | undefined {
  if (!os) return undefined;
  const v = os.release ?? os.versionId;
  return v ? `${os.id}-${v}` : os.id;
}

/** Packages from dpkg status paragraphs (only those installed, or without a Status field as in status.d). */
export function dpkgPackages(text: string, os: OsRelease | undefined): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  for (const p of parseDeb822(text)) {
    const name = p.get('Package');
    const version = p.get('Version');
    if (!name || !version) continue;
    const status = p.get('Status');
    if (status !== undefined && status.split(/\s+/)[2] !== 'installed') continue;
    const arch = p.get('Architecture');
    const src = p.get('Source');
    const srcMatch = src ? /^(\S+)(?:\s+\(([^)]+)\))?$/.exec(src) : null;
    const epoch = /^(\d+):/.exec(version)?.[1];
    const bare = epoch ? version.slice(epoch.length + 1) : version;
    const pkg: Record<string, string> & { type: 'deb' } = {
      type: 'deb',
      name,
      version,
      purl: purl('deb', os?.id ?? 'debian', name, bare, { arch, distro: distro(os), epoch }),
    };
    if (arch) pkg['architecture'] = arch;
    if (srcMatch) {
      pkg['source'] = srcMatch[1] as string;
      pkg['sourceVersion'] = srcMatch[2] ?? version;
    }
    if (p.get('Maintainer')) pkg['maintainer'] = p.get('Maintainer') as string;
    const desc = p.get('Description');
    if (desc) pkg['description'] = desc.split('\n')[0] as string;
    if (p.get('Homepage')) pkg['homepage'] = p.get('Homepage') as string;
    out.push(pkg as unknown as InstalledPackage);
  }
  return out;
}

/** Packages from apk's installed database (`P:`, `V:`, `A:`, `L:`, `o:`, `T:`, `U:`, `m:` lines). */
export function apkPackages(text: string, os: OsRelease | undefined): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of block.split('\n')) {
      if (line.length > 2 && line[1] === ':' && !f.has(line[0] as string)) f.set(line[0] as string, line.slice(2));
    }
    const name = f.get('P');
    const version = f.get('V');
    if (!name || !version) continue;
    const arch = f.get('A');
    const pkg: Record<string, string> & { type: 'apk' } = {
      type: 'apk',
      name,
      version,
      purl: purl('apk', os?.id ?? 'alpine', name, version, { arch, distro: os?.release ?? os?.versionId }),
    };
    if (arch) pkg['architecture'] = arch;
    if (f.get('o')) pkg['source'] = f.get('o') as string;
    if (f.get('m')) pkg['maintainer'] = f.get('m') as string;
    if (f.get('L')) pkg['license'] = f.get('L') as string;
    if (f.get('T')) pkg['description'] = f.get('T') as string;
    if (f.get('U')) pkg['homepage'] = f.get('U') as string;
    out.push(pkg as unknown as InstalledPackage);
  }
  return out;
}

/**
 * The OS and installed packages of `img`, read from its layers (see image-files.ts). Packages are
 * sorted by type, name and version; an image without package databases gives an empty list.
 */
export async function scanImage(img: Image): Promise<ImageInventory> {
  const files = await readImageFiles(img, isWanted);
  const osText = files.get('etc/os-release') ?? files.get('usr/lib/os-release');
  let os = osText ? parseOsRelease(osText.toString('utf8')) : undefined;
  const releaseFile = os ? RELEASE_FILES[os.id] : undefined;
  const release = releaseFile ? files.get(releaseFile)?.toString('utf8').trim() : undefined;
  if (os && release && /^\d+(\.\d+)*$/.test(release)) os = { ...os, release };
  const packages: InstalledPackage[] = [];
  const status = files.get(DPKG_STATUS);
  if (status) packages.push(...dpkgPackages(status.toString('utf8'), os));
  for (const [path, data] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (path.startsWith(DPKG_STATUS_D)) packages.push(...dpkgPackages(data.toString('utf8'), os));
  }
  const apk = files.get(APK_INSTALLED);
  if (apk) packages.push(...apkPackages(apk.toString('utf8'), os));
  packages.sort((a, b) => (a.type !== b.type ? (a.type < b.type ? -1 : 1) : a.name !== b.name ? (a.name < b.name ? -1 : 1) : a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  return os ? { os, packages } : { packages };
}
