/**
 * A registry with the OCI 1.1 referrers API, for the tests of that path. Neither Debian's
 * docker-registry (distribution 2.8) nor distribution v3.0.0 has it: v3's router
 * (registry/api/v2/routes.go) registers no `referrers` route, so `/v2/<name>/referrers/<digest>`
 * is a plain 404 "page not found" whatever the configuration (the endpoint is an open upstream
 * pull request). go-containerregistry's `pkg/registry` implements it behind
 * `WithReferrersSupport(true)`, which its `crane registry serve` does not set; so this helper builds
 * a ten-line main around it with the machine's Go (module proxy), once, into the test cache
 * (`<test cache>/go/bin/ggcr-registry-<version>/`, next to the tools of go-tools.ts; built with
 * private Go caches that are removed afterwards, about 2 minutes on 2 cores).
 * It keeps everything in memory; each start is an empty registry.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCachedDir } from './base-images.js';
import { goBinary, goCacheRoot } from './go-tools.js';

/** The go-containerregistry release whose registry is built. */
export const GGCR_VERSION = 'v0.22.1';

const MAIN_GO = `package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: ggcr-registry ADDRESS")
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\\n", l.Addr())
	log.Fatal(http.Serve(l, registry.New(registry.WithReferrersSupport(true))))
}
`;

/** Runs go with private caches under `gohome` (removed by the caller): go-tools' shared caches may be cleaned by another run meanwhile. */
function go(args: string[], cwd: string, gohome: string): Promise<void> {
  const env = { ...process.env, GOPATH: join(gohome, 'path'), GOMODCACHE: join(gohome, 'modcache'), GOCACHE: join(gohome, 'cache'), GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false -modcacherw' };
  return new Promise((resolve, reject) => {
    execFile(goBinary()!, args, { cwd, env, timeout: 30 * 60_000, maxBuffer: 16 << 20 }, (err, _out, stderr) => {
      if (err) reject(new Error(`go ${args.join(' ')}: ${stderr.trim().split('\n').slice(-5).join(' ')}`, { cause: err }));
      else resolve();
    });
  });
}

let built: Promise<{ path?: string; skip?: string }> | undefined;

/** The built registry binary, or why there is none (building it the first time, about two minutes). Never throws. */
export function referrersRegistryBinary(): Promise<{ path?: string; skip?: string }> {
  built ??= (async () => {
    if (process.env['TSBUILD_TEST_GO_TOOLS'] === '0') return { skip: 'ggcr registry: TSBUILD_TEST_GO_TOOLS=0' };
    const bin = join(goCacheRoot(), 'bin', `ggcr-registry-${GGCR_VERSION}`, 'ggcr-registry');
    if (existsSync(bin)) return { path: bin };
    if (!goBinary()) return { skip: 'ggcr registry: no Go toolchain to build it' };
    try {
      const dir = await makeCachedDir(join(goCacheRoot(), 'bin'), `ggcr-registry-${GGCR_VERSION}`, async (tmp) => {
        const src = join(tmp, 'src');
        const gohome = join(tmp, 'go');
        await mkdir(src, { recursive: true });
        await writeFile(join(src, 'main.go'), MAIN_GO);
        await writeFile(join(src, 'go.mod'), 'module tsbuild.test/ggcr-registry\n\ngo 1.22\n');
        try {
          await go(['get', `github.com/google/go-containerregistry@${GGCR_VERSION}`], src, gohome);
          await go(['build', '-o', join(tmp, 'ggcr-registry'), '.'], src, gohome);
        } finally {
          await rm(src, { recursive: true, force: true });
          await rm(gohome, { recursive: true, force: true });
        }
      });
      return { path: join(dir, 'ggcr-registry') };
    } catch (e) {
      return { skip: `ggcr registry: ${(e as Error).message}` };
    }
  })();
  return built;
}

/** A running referrers-capable registry. */
export interface ReferrersRegistry {
  /** `127.0.0.1:<port>` */
  readonly host: string;
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts the registry on a free loopback port (plain HTTP). */
export async function startReferrersRegistry(binary: string): Promise<ReferrersRegistry> {
  const child: ChildProcess = spawn(binary, ['127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const host = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('ggcr registry did not start within 30 s')), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ggcr registry exited with ${code}`));
    });
  });
  child.stdout!.resume();
  return {
    host,
    url: `http://${host}`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
