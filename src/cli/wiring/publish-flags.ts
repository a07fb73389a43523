/**
 * The flags of `tsbuild build` that publish the result: `--push`, `--output type=registry`
 * (BuildKit's syntax; `type=image,push=true` too), `--sign --key`, `--sbom`, `--provenance`, and
 * the registry connection flags. Parsing only: this module loads nothing heavy, the pipeline is
 * `publish.ts` (loaded when a build publishes).
 */
import { basename, isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatReference, parseReference } from '../../oci/reference.js';
import { UsageError } from '../../util/errors.js';

/** The publishing flags as commander hands them over (merged into build's flags). */
export interface PublishFlags {
  push?: boolean;
  sign?: boolean;
  key?: string;
  sbom?: boolean;
  provenance?: string | boolean;
  tlsVerify?: string | boolean;
  insecure?: boolean;
  plainHttp?: boolean;
  certDir?: string;
  creds?: string;
}

/** SLSA provenance detail: `min` (parameters and dependencies) or `max` (also the Dockerfile text and the layers). */
export type ProvenanceMode = 'min' | 'max';

/** What a build publishes after it is stored. */
export interface PublishPlan {
  /** References to push, formatted, in order (at least one). */
  readonly refs: readonly string[];
  /** Private key path: sign the pushed digest with it. */
  readonly signKey?: string;
  /** Attach an SPDX SBOM attestation. */
  readonly sbom: boolean;
  /** Attach a SLSA v1 provenance attestation. */
  readonly provenance?: ProvenanceMode;
  /** `builder-id=URI` of `--provenance`: `runDetails.builder.id` (a CI job, for instance). */
  readonly provenanceBuilderId?: string;
  /** Connection flags for the registries of `refs`. */
  readonly connection: PublishFlags;
}

/**
 * Adds the publishing flags to `cmd` (the registry connection flags only when no other flag set
 * has added them already).
 */
export function publishFlags(cmd: Command): Command {
  cmd
    .option('--push', 'push the image to every -t name after the build (shorthand for --output type=registry); prints the pushed digest')
    .option('--sign', 'with --push: sign the pushed digest with --key (cosign-compatible, like tsbuild sign)')
    .option('--key <path>', 'private key for --sign (cosign.key, or an EC/PKCS#8 PEM); $COSIGN_PASSWORD or a prompt for its password')
    .option('--sbom', 'with --sign: attach an SPDX SBOM of the image as a signed attestation (like tsbuild attest --type spdxjson)')
    .option('--provenance [opts]', 'with --sign: attach a signed SLSA v1 provenance attestation: mode=min (default) or mode=max, optionally ,builder-id=URI (write --provenance=mode=max)');
  if (!cmd.options.some((o) => o.long === '--tls-verify')) {
    cmd
      .option('--tls-verify <bool>', 'verify TLS certificates of the registry (false also allows plain HTTP)', 'true')
      .option('--insecure', 'allow plain HTTP when HTTPS does not answer (loopback registries always may)')
      .option('--plain-http', 'use plain HTTP only')
      .option('--cert-dir <dir>', 'directory with CA certificates (*.crt) and a client certificate (*.cert, *.key)')
      .option('--creds <user:password>', 'credentials for the registry (default: auth.json / docker config.json)');
  }
  return cmd;
}

/** Splits `a,"b,c",d` at commas outside double quotes (buildx reads --output as one CSV record). */
export function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new UsageError('INVALID_ARGUMENT', `invalid --output ${JSON.stringify(s)}: unterminated quote`);
  out.push(cur);
  return out;
}

function boolAttr(key: string, v: string): boolean {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  throw new UsageError('INVALID_ARGUMENT', `invalid --output ${key}=${JSON.stringify(v)}: want true or false`);
}

/** An `--output` that publishes, taken apart. */
interface RegistryOutput {
  readonly push: boolean;
  readonly names: readonly string[];
  readonly insecure: boolean;
}

/**
 * Reads `type=registry[,name=REF][,push=true]` and `type=image,name=…,push=true`; undefined for
 * every other output (left to the regular output parser).
 */
export function parseRegistryOutput(s: string): RegistryOutput | undefined {
  if (!s.includes('=')) return undefined;
  const kv = new Map<string, string>();
  for (const part of splitCsv(s)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError('INVALID_ARGUMENT', `invalid --output ${JSON.stringify(s)}: expected key=value pairs`);
    kv.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const type = kv.get('type') ?? 'image';
  if (type !== 'registry' && type !== 'image') return undefined;
  if (type === 'image' && !kv.has('push') && !kv.has('name')) return undefined;
  for (const k of kv.keys()) {
    // oci-mediatypes: tsbuild's images always use OCI media types
    if (!['type', 'name', 'push', 'registry.insecure', 'oci-mediatypes'].includes(k)) {
      throw new UsageError('INVALID_ARGUMENT', `--output type=${type}: unsupported option ${k} (supported: name, push, registry.insecure)`);
    }
  }
  const names = (kv.get('name') ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  return { push: type === 'registry' ? boolAttr('push', kv.get('push') ?? 'true') : boolAttr('push', kv.get('push') ?? 'false'), names, insecure: boolAttr('registry.insecure', kv.get('registry.insecure') ?? 'false') };
}

/** `--provenance`, `--provenance=true|false|min|max|mode=min|mode=max[,builder-id=URI]` (buildx's attest options). */
export function parseProvenance(v: string | boolean | undefined): { mode: ProvenanceMode; builderId?: string } | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return { mode: 'min' };
  const s = v.trim();
  if (s === 'false' || s === '0') return undefined;
  if (s === 'true' || s === '1' || s === '') return { mode: 'min' };
  const bad = (why: string) =>
    new UsageError('INVALID_ARGUMENT', `invalid --provenance ${JSON.stringify(s)}: ${why} (write --provenance=mode=max; a bare --provenance must not be followed by the context)`);
  let mode: ProvenanceMode = 'min';
  let builderId: string | undefined;
  for (const part of s.split(',')) {
    const m = /^(?:mode=)?(min|max)$/.exec(part.trim());
    if (m) {
      mode = m[1] as ProvenanceMode;
      continue;
    }
    const b = /^builder-id=(.+)$/.exec(part.trim());
    if (b && /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(b[1]!)) {
      builderId = b[1]!;
      continue;
    }
    throw bad(b ? 'builder-id must be a URI' : 'want mode=min or mode=max, optionally ,builder-id=URI');
  }
  return { mode, ...(builderId ? { builderId } : {}) };
}

function checkName(t: string): string {
  let r;
  try {
    r = parseReference(t);
  } catch (e) {
    throw new UsageError('INVALID_ARGUMENT', `invalid image name ${JSON.stringify(t)}`, { cause: e });
  }
  if (r.digest) throw new UsageError('INVALID_ARGUMENT', `invalid image name ${JSON.stringify(t)}: a digest reference cannot be pushed to`);
  return formatReference(r);
}

/**
 * Decides what a build publishes from its flags, before anything runs: the `--output` left for
 * the regular parser (undefined when the output was a registry one) and the plan (undefined when
 * nothing is pushed). `tags` are the -t names, already checked. Throws UsageError for flags
 * that do not fit together (`--sign` without `--push`, `--push` with a file output, no name, …).
 */
export function planPublish(f: PublishFlags, tags: readonly string[], output: string | undefined): { output: string | undefined; plan?: PublishPlan } {
  const reg = output !== undefined ? parseRegistryOutput(output) : undefined;
  const rest = reg ? undefined : output;
  const push = !!f.push || !!reg?.push;
  const provenance = parseProvenance(f.provenance);
  if (!push) {
    if (f.sign || f.sbom || provenance) throw new UsageError('INVALID_ARGUMENT', '--sign, --sbom and --provenance need --push (or --output type=registry)');
    if (reg?.names.length) throw new UsageError('INVALID_ARGUMENT', '--output type=image,name=…: tsbuild names local images with -t; add push=true to push');
    return { output: rest };
  }
  if (f.push && rest !== undefined) throw new UsageError('INVALID_ARGUMENT', `--push cannot be combined with --output ${rest}: it is --output type=registry`);
  if ((f.sbom || provenance) && !f.sign) throw new UsageError('INVALID_ARGUMENT', '--sbom and --provenance are signed attestations: add --sign --key KEY');
  if (f.sign && !f.key) throw new UsageError('INVALID_ARGUMENT', '--sign needs --key');
  if (f.key && !f.sign) throw new UsageError('INVALID_ARGUMENT', '--key is only used with --sign');
  // BuildKit: the output's name= wins over -t for what gets pushed
  const refs = [...new Set(reg?.names.length ? reg.names.map(checkName) : tags)];
  if (refs.length === 0) throw new UsageError('INVALID_ARGUMENT', '--push needs a name: -t NAME or --output type=registry,name=NAME');
  const connection: PublishFlags = reg?.insecure ? { ...f, insecure: true } : f;
  return {
    output: rest,
    plan: {
      refs,
      ...(f.sign && f.key ? { signKey: f.key } : {}),
      sbom: !!f.sbom,
      ...(provenance ? { provenance: provenance.mode, ...(provenance.builderId ? { provenanceBuilderId: provenance.builderId } : {}) } : {}),
      connection,
    },
  };
}

/**
 * The Dockerfile's name for provenance: relative to the context directory (so no host path is
 * recorded), `-` for stdin, `Dockerfile` by default.
 */
export function dockerfileName(contextArg: string, file: string | undefined): string {
  if (file === '-') return '-';
  if (!file) return 'Dockerfile';
  if (contextArg === '-') return file;
  const rel = relative(resolve(contextArg), resolve(file));
  return rel.startsWith('..') || isAbsolute(rel) ? basename(file) : rel;
}
