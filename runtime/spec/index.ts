export * from './types.js';
export * from './defaults.js';
export { specFromImage, mergeEnv, INIT_PATH_IN_CONTAINER, type SpecOptions, type BindMount, type TmpfsMount, type ResourceOptions } from './from-image.js';
export { resolveUser, parsePasswd, parseGroup, type ExecUser, type PasswdEntry, type GroupEntry } from './user.js';
export { RuntimeError, type RuntimeErrorCode } from './errors.js';
