/** The builder's public surface (each area adds its own lines). */
export { build, type BuildOptions, type BuildResult } from './build.js';
export { BuildError, type BuildErrorCode } from './exec/errors.js';
export type { ActiveSnapshot, ExecMount, ExecRequest, ExecResult, Executor, ImageResolver, ProcessIO, Snapshotter } from './exec/types.js';
export { FileBuildCache, StepTrail, explainMiss, BUILD_CACHE_DIR, type BuildCache, type CacheRecord, type StepTrailEntry } from './solver/cache.js';
export { DirCacheMounts, type CacheMounts, type CacheMountLease } from './solver/cache-mounts.js';
export type { ProgressEvent, ProgressSink } from './solver/progress.js';
export { cacheKey, opDigest, CACHE_KEY_VERSION, type Op } from './graph/op.js';
