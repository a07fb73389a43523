/**
 * vitest global setup: runs once before all test files. Prepares shared, slow fixtures
 * (offline base images, the real registry) and tears them down afterwards.
 */
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
