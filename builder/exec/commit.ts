/**
 * Snapshot diff → layer: the overlay upper directory is the diff (no tree walk of the whole
 * root). Runtime-made files (/etc/hosts, /etc/resolv.conf, /etc/hostname, mount points that
 * did not exist) are kept out; an upper with nothing else in it gives no layer.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Descriptor } from '../../src/oci/descriptor.js';
import type { Digest } from '../../src/oci/digest.js';
import type { ContentStore } from '../../src/oci/content/content-store.js';
import { tarDirectory, writeLayer, type Compression } from '../../src/oci/tar/index.js';

/** Files the runtime bind-mounts into every RUN container; never part of a RUN's layer. */
export const RUNTIME_ETC_FILES: readonly string[] = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname'];

/** A stored layer made from a snapshot diff. */
export interface CommittedLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
}

/** Options of {@link commitUpper}. */
export interface CommitOptions {
  /** Absolute container paths the runtime created (mount points); see ExecResult.runtimePaths. */
  readonly runtimePaths?: readonly string[];
  /** Leave out /etc/hosts, /etc/resolv.conf and /etc/hostname (RUN steps). */
  readonly excludeEtcFiles?: boolean;
  readonly sourceDateEpoch?: number;
  readonly compression?: Compression;
  readonly level?: number;
}

/**
 * Computes which relative paths of `upper` to leave out: the runtime's /etc files, and runtime
 * mount points (and their ancestors) that are empty files or directories holding nothing but
 * excluded entries.
 */
export async function runtimeExclusions(upper: string, opts: CommitOptions): Promise<Set<string>> {
  const out = new Set<string>();
  if (opts.excludeEtcFiles) for (const f of RUNTIME_ETC_FILES) out.add(f);
  const candidates = new Set<string>();
  for (const p of [...(opts.runtimePaths ?? []), ...(opts.excludeEtcFiles ? RUNTIME_ETC_FILES.map((f) => '/' + f) : [])]) {
    let rel = posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
    while (rel && rel !== '.') {
      candidates.add(rel);
      rel = posix.dirname(rel);
      if (rel === '.') break;
    }
  }
  // deepest first, so a parent sees its children's verdicts
  const sorted = [...candidates].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const rel of sorted) {
    if (out.has(rel)) continue;
    const st = await lstat(join(upper, rel)).catch(() => undefined);
    if (!st) continue;
    if (st.isFile() && st.size === 0 && (opts.runtimePaths ?? []).some((p) => posix.normalize(p).replace(/^\/+/, '') === rel)) out.add(rel);
    else if (st.isDirectory()) {
      const names = await readdir(join(upper, rel));
      if (names.every((n) => out.has(`${rel}/${n}`))) out.add(rel);
    }
  }
  return out;
}

async function anyEntry(dir: string, rel: string, excluded: ReadonlySet<string>): Promise<boolean> {
  for (const n of await readdir(dir)) {
    const r = rel ? `${rel}/${n}` : n;
    if (excluded.has(r)) continue;
    return true;
  }
  return false;
}

/**
 * Turns a snapshot's upper dir into a stored layer (overlay whiteouts → OCI `.wh.` entries,
 * mtimes clamped to `sourceDateEpoch`), or undefined when nothing changed.
 */
export async function commitUpper(upper: string, store: ContentStore, opts: CommitOptions = {}): Promise<CommittedLayer | undefined> {
  const excluded = await runtimeExclusions(upper, opts);
  if (!(await anyEntry(upper, '', excluded))) return undefined;
  const tar = tarDirectory(upper, {
    overlayUpper: true,
    ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
    exclude: (rel) => excluded.has(rel),
  });
  const r = await writeLayer(tar, store, { compression: opts.compression ?? 'gzip', ...(opts.level !== undefined ? { level: opts.level } : {}) });
  return { descriptor: r.descriptor, diffId: r.diffId };
}
