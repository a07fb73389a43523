/**
 * Docker's mount syntaxes turned into {@link MountRequest}s: `-v [SRC:]DST[:OPTS]` and
 * `--mount type=bind|volume|tmpfs,source=…,target=…,…`. Pure; errors are VolumeError
 * INVALID_MOUNT with docker's wording where it has one.
 */
import { posix } from 'node:path';
import { VolumeError } from './errors.js';

/** Mount propagation of a bind (docker --mount bind-propagation, -v :shared …). */
export type Propagation = 'rprivate' | 'private' | 'rshared' | 'shared' | 'rslave' | 'slave';
const PROPAGATIONS: readonly string[] = ['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'];

/** One mount a container asks for. */
export type MountRequest =
  | {
    type: 'bind'; source: string; target: string; readonly: boolean; propagation?: Propagation; nonRecursive?: boolean;
    /** From -v (missing source: docker's -v message) rather than --mount. */
    fromVolumeFlag?: boolean;
  }
  | {
    /** `source` unset: an anonymous volume made for this container. */
    type: 'volume'; source?: string; target: string; readonly: boolean; noCopy?: boolean; labels?: Record<string, string>;
  }
  | { type: 'tmpfs'; target: string; readonly: boolean; size?: number; mode?: number };

function invalid(msg: string): VolumeError {
  return new VolumeError('INVALID_MOUNT', msg);
}

function checkTarget(target: string, spec: string): string {
  if (!target) throw invalid(`invalid mount config: target is required in ${JSON.stringify(spec)}`);
  if (!target.startsWith('/')) throw invalid(`invalid mount path: ${JSON.stringify(target)} mount path must be absolute`);
  const norm = posix.normalize(target);
  if (norm === '/') throw invalid(`invalid specification: destination can't be '/' in ${JSON.stringify(spec)}`);
  return norm.length > 1 && norm.endsWith('/') ? norm.slice(0, -1) : norm;
}

/**
 * `-v` / `--volume`: `/host:/ctr[:opts]` (bind), `name:/ctr[:opts]` (named volume, created on
 * first use), `/ctr` (anonymous volume). Options: ro, rw, nocopy (volumes), a propagation
 * (binds), z/Z and consistency flags are accepted and ignored (no SELinux; Linux only).
 */
export function parseVolumeFlag(spec: string): MountRequest {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw invalid(`invalid volume specification: ${JSON.stringify(spec)}`);
  if (parts.length === 1) return { type: 'volume', target: checkTarget(parts[0]!, spec), readonly: false };
  // a two-part spec whose second part is not a path is DST:OPTS (docker: /ctr:ro makes an anonymous volume)
  if (parts.length === 2 && !parts[1]!.startsWith('/') && parts[0]!.startsWith('/')) {
    const opts = parseVolumeOptions(parts[1]!, spec);
    if (opts.propagation) throw invalid(`invalid volume specification: ${JSON.stringify(spec)}: propagation applies to bind mounts`);
    return { type: 'volume', target: checkTarget(parts[0]!, spec), readonly: opts.readonly, ...(opts.noCopy ? { noCopy: true } : {}) };
  }
  const [src, dst, mode] = parts as [string, string, string | undefined];
  const target = checkTarget(dst, spec);
  const opts = parseVolumeOptions(mode ?? '', spec);
  if (src.startsWith('/')) {
    if (opts.noCopy) throw invalid(`invalid volume specification: ${JSON.stringify(spec)}: nocopy applies to volumes`);
    return { type: 'bind', source: posix.normalize(src), target, readonly: opts.readonly, ...(opts.propagation ? { propagation: opts.propagation } : {}), fromVolumeFlag: true };
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(src)) {
    throw invalid(`${JSON.stringify(src)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; if you intended to pass a host directory, use an absolute path`);
  }
  if (opts.propagation) throw invalid(`invalid volume specification: ${JSON.stringify(spec)}: propagation applies to bind mounts`);
  return { type: 'volume', source: src, target, readonly: opts.readonly, ...(opts.noCopy ? { noCopy: true } : {}) };
}

function parseVolumeOptions(mode: string, spec: string): { readonly: boolean; noCopy: boolean; propagation?: Propagation } {
  let ro: boolean | undefined;
  let noCopy = false;
  let propagation: Propagation | undefined;
  for (const o of mode ? mode.split(',') : []) {
    if (o === 'ro' || o === 'rw') {
      if (ro !== undefined) throw invalid(`invalid mode: ${mode} in ${JSON.stringify(spec)}`);
      ro = o === 'ro';
    } else if (o === 'nocopy') noCopy = true;
    else if (PROPAGATIONS.includes(o)) {
      if (propagation) throw invalid(`invalid mode: ${mode} in ${JSON.stringify(spec)}`);
      propagation = o as Propagation;
    } else if (!['z', 'Z', 'consistent', 'cached', 'delegated'].includes(o)) throw invalid(`invalid mode: ${o} in ${JSON.stringify(spec)}`);
  }
  return { readonly: !!ro, noCopy, ...(propagation ? { propagation } : {}) };
}

function parseBool(v: string | undefined, key: string, spec: string): boolean {
  if (v === undefined) return true;
  if (['1', 'true', 'True', 'TRUE'].includes(v)) return true;
  if (['0', 'false', 'False', 'FALSE'].includes(v)) return false;
  throw invalid(`invalid value for ${key}: ${v} in ${JSON.stringify(spec)}`);
}

/** tmpfs-mode: an octal number (docker parses it with base 8). */
function parseMode(v: string, spec: string): number {
  if (!/^0?[0-7]{1,4}$/.test(v)) throw invalid(`invalid value for tmpfs-mode: ${v} in ${JSON.stringify(spec)}`);
  return parseInt(v, 8);
}

function parseBytes(v: string, spec: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw invalid(`invalid value for tmpfs-size: ${v} in ${JSON.stringify(spec)}`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…]
 * [,bind-nonrecursive][,volume-nocopy][,volume-label=k=v][,tmpfs-size=…][,tmpfs-mode=…]`.
 * The type defaults to volume; src/dst/destination and ro are aliases as with docker.
 */
export function parseMountFlag(spec: string): MountRequest {
  let type = 'volume';
  let source: string | undefined;
  let target = '';
  let readonly = false;
  let propagation: Propagation | undefined;
  let nonRecursive = false;
  let noCopy = false;
  let size: number | undefined;
  let mode: number | undefined;
  const labels: Record<string, string> = {};
  const seen = new Set<string>();
  for (const field of spec.split(',')) {
    if (!field) continue;
    const i = field.indexOf('=');
    const key = (i < 0 ? field : field.slice(0, i)).toLowerCase();
    const value = i < 0 ? undefined : field.slice(i + 1);
    const need = (): string => {
      if (value === undefined) throw invalid(`invalid field ${JSON.stringify(field)} must be a key=value pair`);
      return value;
    };
    seen.add(key);
    switch (key) {
      case 'type': type = need(); break;
      case 'source': case 'src': source = need(); break;
      case 'target': case 'dst': case 'destination': target = need(); break;
      case 'readonly': case 'ro': readonly = parseBool(value, key, spec); break;
      case 'bind-propagation': {
        const v = need();
        if (!PROPAGATIONS.includes(v)) throw invalid(`invalid value for bind-propagation: ${v}: want one of ${PROPAGATIONS.join(', ')}`);
        propagation = v as Propagation;
        break;
      }
      case 'bind-nonrecursive': nonRecursive = parseBool(value, key, spec); break;
      case 'volume-nocopy': noCopy = parseBool(value, key, spec); break;
      case 'volume-label': {
        const v = need();
        const j = v.indexOf('=');
        labels[j < 0 ? v : v.slice(0, j)] = j < 0 ? '' : v.slice(j + 1);
        break;
      }
      case 'volume-driver':
        if (need() !== 'local') throw invalid(`volume driver ${JSON.stringify(value)} is not supported: only local`);
        break;
      case 'tmpfs-size': size = parseBytes(need(), spec); break;
      case 'tmpfs-mode': mode = parseMode(need(), spec); break;
      case 'consistency': need(); break;
      default:
        throw invalid(`unexpected key ${JSON.stringify(key)} in ${JSON.stringify(field)}`);
    }
  }
  const wrongFor = (keys: string[]) => {
    const bad = keys.filter((k) => seen.has(k));
    if (bad.length) throw invalid(`invalid mount config for type ${JSON.stringify(type)}: ${bad[0]} is not allowed for this type`);
  };
  const t = checkTarget(target, spec);
  if (type === 'bind') {
    wrongFor(['volume-nocopy', 'volume-label', 'volume-driver', 'tmpfs-size', 'tmpfs-mode']);
    if (!source) throw invalid('invalid mount config for type "bind": field Source must not be empty');
    if (!source.startsWith('/')) throw invalid(`invalid mount config for type "bind": invalid mount path: ${JSON.stringify(source)} mount path must be absolute`);
    return { type: 'bind', source: posix.normalize(source), target: t, readonly, ...(propagation ? { propagation } : {}), ...(nonRecursive ? { nonRecursive } : {}) };
  }
  if (type === 'volume') {
    wrongFor(['bind-propagation', 'bind-nonrecursive', 'tmpfs-size', 'tmpfs-mode']);
    if (source !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(source)) {
      throw invalid(`invalid mount config for type "volume": ${JSON.stringify(source)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
    }
    return { type: 'volume', ...(source ? { source } : {}), target: t, readonly, ...(noCopy ? { noCopy } : {}), ...(Object.keys(labels).length ? { labels } : {}) };
  }
  if (type === 'tmpfs') {
    wrongFor(['bind-propagation', 'bind-nonrecursive', 'volume-nocopy', 'volume-label', 'volume-driver']);
    if (source) throw invalid('invalid mount config for type "tmpfs": source must not be specified');
    return { type: 'tmpfs', target: t, readonly, ...(size !== undefined ? { size } : {}), ...(mode !== undefined ? { mode } : {}) };
  }
  throw invalid(`invalid mount config: mount type ${JSON.stringify(type)} is not supported: use bind, volume or tmpfs`);
}
