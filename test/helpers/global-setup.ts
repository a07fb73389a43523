/**
 * vitest global setup: runs once before all test files. Makes the test cache directory and builds
 * the shared offline base images (busybox, and Debian unless TSBUILD_TEST_NO_DEBIAN=1 or the host
 * cannot) so that test files find them ready instead of racing to make them. Building the project
 * itself is .ci/setup's job. A base image that cannot be made here is reported, not fatal: the tests
 * that need it fail or skip with their own reason.
 */
import { mkdir } from 'node:fs/promises';
import { busyboxRootfs, debianRootfs, debianUnavailable, testCacheDir } from './base-images.js';

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
  const ms = Date.now() - started;
  if (ms > 2000) console.warn(`global-setup: base images ready in ${(ms / 1000).toFixed(1)} s`);
  return async () => {};
}
