export { createCgroupManager, cgroupManagerFromPaths, detectCgroupLayout, type CgroupManagerOptions, type CgroupLayout } from './manager.js';
export type { CgroupConfig, CgroupManager, CgroupStats, FreezerState } from './types.js';
export { nodeCgroupFs, type CgroupFs } from './fs.js';
export { parseProcCgroup } from './common.js';
