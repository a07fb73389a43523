/**
 * vitest global setup: runs once before all test files. Makes the test cache directory and builds
 * the shared offline base images (busybox, and Debian unless TSBUILD_TEST_NO_DEBIAN=1 or the host
 * cannot) so that test files find them ready instead of racing to make them. Building the project
 * itself is .ci/setup's job. A base image that cannot be made here is reported, not fatal: the tests
 * that need it fail or skip with their own reason.
 */
import { mkdir } from 'node:fs/promises';
import { busyboxRootfs, debianRootfs, debianUnavailable, testCacheDir } from './base-images.js';
import { dropGoBuildCaches, goTool } from './go-tools.js';
import { referrersRegistryBinary } from './referrers-registry.js';

export default async function setup(): Promise<() => Promise<void>> {
  await mkdir(testCacheDir(), { recursive: true });
  const started = Date.now();
  try {
    await busyboxRootfs();
  } catch (e) {
    console.warn(`global-setup: busybox rootfs: ${(e as Error).message}`);
  }
  const why = debianUnavailable();
  if (why) {
    console.warn(`global-setup: skipping the debian rootfs: ${why}`);
  } else {
    try {
      await debianRootfs();
    } catch (e) {
      console.warn(`global-setup: debian rootfs: ${(e as Error).message}`);
    }
  }
  // The judges Debian does not package: cosign (required by the signing tests; ~11 min on 2 cores
  // the first time, then cached), then cosign v3 and trivy, one at a time so they do not compete for
  // the 2 cores. goTool prints "skip: …" itself when a tool cannot be built.
  for (const t of ['cosign', 'cosign3', 'trivy'] as const) await goTool(t);
  // the registry with the OCI referrers API (go-containerregistry's; distribution has none)
  const rr = await referrersRegistryBinary();
  if (rr.skip) console.warn(`skip: ${rr.skip}`);
  await dropGoBuildCaches();
  const ms = Date.now() - started;
  if (ms > 2000) console.warn(`global-setup: base images ready in ${(ms / 1000).toFixed(1)} s`);
  return async () => {};
}
