import type { ImageConfig } from './config.js';
import type { Image } from './image.js';
import { MediaTypes } from './media-types.js';
import { assemble, computedImage } from './mutate.js';
import { hostPlatform, type Platform } from './platform.js';

/**
 * The empty image (`FROM scratch`): an OCI manifest with no layers and a config with the
 * platform (default: the host's), an empty `config` and `rootfs.diff_ids: []`; no `created`
 * time and no history, so the result is byte-for-byte reproducible. Add layers with
 * appendLayers. NOTE: image-spec's JSON schema requires at least one layer (the prose only says
 * SHOULD), so the empty image itself is a valid base but not a portable final image.
 */
export function emptyImage(platform: Platform = hostPlatform()): Image {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform['os.version'] !== undefined ? { 'os.version': platform['os.version'] } : {}),
    ...(platform['os.features'] !== undefined ? { 'os.features': [...platform['os.features']] } : {}),
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
  };
  return computedImage(async () =>
    assemble({ schemaVersion: 2, mediaType: MediaTypes.OciManifest, config: { mediaType: MediaTypes.OciConfig }, layers: [] }, config, []),
  );
}
