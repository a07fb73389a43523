export { SnapshotStore } from './snapshots.js';
export { planOverlay, MOUNT_DATA_MAX, type OverlayPlan } from './overlay.js';
export { prepareRootfs, mountOverlay, unmount, type PreparedRootfs } from './prepare.js';
export { mount, umount2, MNT_DETACH, MS_RDONLY } from './mount.js';
