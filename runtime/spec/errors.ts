/** The runtime's one error class lives in runtime/errors.ts; re-exported here for spec/cgroups/rootfs code. */
export { RuntimeError, errnoName, type RuntimeErrorCode } from '../errors.js';
