/**
 * Peer tools that Debian does not package (cosign v2 and v3, trivy, distribution v3's registry), built once
 * per machine from the Go module proxy with the machine's Go and kept under the test cache:
 * `${TSBUILD_TEST_CACHE:-/var/cache/tsbuild-test}/go/` holds GOPATH, GOMODCACHE, GOCACHE and one
 * `bin/<tool>-<version>/` directory per built tool. A build runs under a lock (other workers and
 * processes wait for it), into a temp dir renamed into place, so a half-built binary is never seen.
 * Versions are tried newest first; a version the machine's Go cannot build (go.mod needs a newer
 * Go, GOTOOLCHAIN=local) is remembered in `<tool>-<version>.failed` and the next one is tried.
 *
 * Set TSBUILD_TEST_GO_TOOLS=0 to never build (tests then skip with that reason).
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCachedDir, testCacheDir } from './base-images.js';

/** The tools this helper knows how to build. */
export type GoToolName = 'cosign' | 'cosign3' | 'trivy' | 'registry';

interface ToolSpec {
  readonly pkg: string;
  readonly binary: string;
  /** Tried in order; the first that builds wins. */
  readonly versions: readonly string[];
}

const TOOLS: Readonly<Record<GoToolName, ToolSpec>> = {
  cosign: { pkg: 'github.com/sigstore/cosign/v2/cmd/cosign', binary: 'cosign', versions: ['v2.4.1', 'v2.2.4'] },
  cosign3: { pkg: 'github.com/sigstore/cosign/v3/cmd/cosign', binary: 'cosign', versions: ['v3.1.3'] },
  trivy: { pkg: 'github.com/aquasecurity/trivy/cmd/trivy', binary: 'trivy', versions: ['v0.56.2', 'v0.50.4'] },
  registry: { pkg: 'github.com/distribution/distribution/v3/cmd/registry', binary: 'registry', versions: ['v3.0.0'] },
};

/** The result of {@link goTool}: a binary path, or why there is none. */
export interface GoToolResult {
  readonly path?: string;
  readonly version?: string;
  readonly skip?: string;
}

/** The Go binary: /usr/local/go/bin/go, else `go` on PATH. */
export function goBinary(): string | undefined {
  if (existsSync('/usr/local/go/bin/go')) return '/usr/local/go/bin/go';
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'go'))) return join(dir, 'go');
  }
  return undefined;
}

/** `<test cache>/go`. */
export function goCacheRoot(): string {
  return join(testCacheDir(), 'go');
}

function goEnv(gobin: string): NodeJS.ProcessEnv {
  const root = goCacheRoot();
  return {
    ...process.env,
    GOBIN: gobin,
    GOPATH: join(root, 'path'),
    GOMODCACHE: join(root, 'modcache'),
    GOCACHE: join(root, 'cache'),
    GOTOOLCHAIN: 'local',
    CGO_ENABLED: '0',
    GOFLAGS: '-buildvcs=false',
  };
}

/**
 * Drops Go's build and module caches once the tools are built: only `bin/` is reused, and the
 * caches (about 12 GB after cosign v2+v3 and trivy) would otherwise fill a small disk.
 */
export async function dropGoBuildCaches(): Promise<void> {
  const go = goBinary();
  const root = goCacheRoot();
  if (!go || !(existsSync(join(root, 'cache')) || existsSync(join(root, 'modcache')))) return;
  await new Promise<void>((resolve) => {
    execFile(go, ['clean', '-cache', '-modcache'], { env: goEnv(goCacheRoot()), timeout: 10 * 60_000 }, () => resolve());
  });
}

function goInstall(go: string, pkg: string, version: string, gobin: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(go, ['install', `${pkg}@${version}`], { env: goEnv(gobin), timeout: 60 * 60_000, maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`go install ${pkg}@${version} failed: ${err.message}\n${stderr.split('\n').slice(-30).join('\n')}`, { cause: err }));
      else resolve();
    });
  });
}

/** A failed build is retried after this long (the proxy may have been down). */
const FAILED_TTL_MS = 24 * 3600_000;

async function build(name: GoToolName): Promise<GoToolResult> {
  if (process.env['TSBUILD_TEST_GO_TOOLS'] === '0') return { skip: `${name}: TSBUILD_TEST_GO_TOOLS=0` };
  const spec = TOOLS[name];
  const binRoot = join(goCacheRoot(), 'bin');
  // Reuse any version already built, in preference order, without needing Go at all.
  for (const v of spec.versions) {
    const p = join(binRoot, `${name}-${v}`, spec.binary);
    if (existsSync(p)) return { path: p, version: v };
  }
  const go = goBinary();
  if (!go) return { skip: `${name}: no Go toolchain (/usr/local/go/bin/go or go on PATH) to build ${spec.pkg}` };
  await mkdir(binRoot, { recursive: true });
  const failures: string[] = [];
  for (const v of spec.versions) {
    const failed = join(binRoot, `${name}-${v}.failed`);
    const st = statSync(failed, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs < FAILED_TTL_MS) {
      failures.push(`${v}: ${(await readFile(failed, 'utf8')).split('\n')[0]}`);
      continue;
    }
    try {
      const dir = await makeCachedDir(binRoot, `${name}-${v}`, (tmp) => goInstall(go, spec.pkg, v, tmp));
      const p = join(dir, spec.binary);
      if (existsSync(p)) return { path: p, version: v };
      failures.push(`${v}: built but ${p} is missing`);
    } catch (e) {
      const msg = (e as Error).message;
      failures.push(`${v}: ${msg.split('\n')[0]}`);
      await writeFile(failed, msg).catch(() => {});
    }
  }
  return { skip: `${name}: could not build ${spec.pkg} (${failures.join('; ')})` };
}

const inProcess = new Map<GoToolName, Promise<GoToolResult>>();

/**
 * The path of `name` built from the Go module proxy (building it the first time, which takes
 * minutes), or a skip reason. The skip reason is also printed with console.warn so that a skipped
 * test says why. Never throws.
 */
export function goTool(name: GoToolName): Promise<GoToolResult> {
  let p = inProcess.get(name);
  if (!p) {
    p = build(name)
      .catch((e: unknown): GoToolResult => ({ skip: `${name}: ${(e as Error).message}` }))
      .then((r) => {
        if (r.skip) console.warn(`skip: ${r.skip}`);
        return r;
      });
    inProcess.set(name, p);
  }
  return p;
}
