/**
 * Shared pieces of the differential tests (tsbuild vs docker build, tsbuild vs buildah build):
 * the Dockerfile variant both engines build when the peer cannot parse some instructions of a
 * corpus case, and the RUN mount stubs a case can leave in an older peer's layers.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CASES } from './harness.js';

/** Hex sha256 of `b`. */
export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * `dockerfile` without the instructions whose first line matches one of `drop`, heredoc bodies
 * included (a dropped line's `<<WORD` markers skip the lines up to each terminator).
 */
export function dropInstructions(dockerfile: string, drop: readonly RegExp[]): string {
  const out: string[] = [];
  const lines = dockerfile.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!drop.some((r) => r.test(line))) {
      out.push(line);
      continue;
    }
    for (const m of line.matchAll(/<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g)) {
      while (i + 1 < lines.length && (m[1] ? lines[i + 1]!.replace(/^\t+/, '') : lines[i + 1]) !== m[3]) i++;
      i++;
    }
  }
  return out.join('\n');
}

/** The Dockerfile of corpus case `dir` (under testdata/build), without `drop`'s instructions. */
export function variantOf(dir: string, drop?: readonly RegExp[]): string {
  const text = readFileSync(join(CASES, dir, 'Dockerfile'), 'utf8');
  return drop ? dropInstructions(text, drop) : text;
}

/**
 * The rootfs paths (relative) a builder creates as mount points for the RUN --mount targets of
 * `dockerfile`: each target (a secret's default is /run/secrets/<id>) and its ancestors.
 */
export function mountStubPaths(dockerfile: string): Set<string> {
  const stubs = new Set<string>();
  for (const m of dockerfile.matchAll(/--mount=(\S+)/g)) {
    const o = new Map(m[1]!.split(',').map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)] as const));
    const target = o.get('target') ?? o.get('dst') ?? o.get('destination') ?? (o.get('type') === 'secret' ? `/run/secrets/${o.get('id') ?? ''}` : '');
    for (let p = target.replace(/^\/+|\/+$/g, ''); p && p !== '.'; p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '') stubs.add(p);
  }
  return stubs;
}
