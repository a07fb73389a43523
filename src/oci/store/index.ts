/** The local image store: names → descriptors over a FileContentStore, gc, fsck, import. */
export { ImageStore, GC_ROOTS_DIR, LEASES_DIR, shortId, type ImageRecord } from './image-store.js';
export { acquireLock, withLock, type HeldLock, type LockOptions } from './lock.js';
export { applyChanges, CHANGE_INSTRUCTIONS } from './config-changes.js';
export { importRootfs, type ImportOptions } from './import.js';
export { summarise, inspectImage, humanSize, timeAgo, type ImageSummary, type ImageInspect } from './describe.js';
