import { TsbuildError } from '../../src/util/errors.js';

/** Codes of {@link VolumeError}: the volume store, mount planning and `cp`. */
export type VolumeErrorCode =
  | 'VOLUME_NOT_FOUND'   // no volume of that name
  | 'VOLUME_IN_USE'      // a container (named in the message) still uses the volume
  | 'INVALID_NAME'       // not [a-zA-Z0-9][a-zA-Z0-9_.-]+
  | 'INVALID_MOUNT'      // a mount request docker would refuse (duplicate target, bad option)
  | 'PATH_NOT_FOUND'     // cp: a source path that does not exist
  | 'INVALID_COPY'       // cp: a directory onto a file, a missing destination directory
  | 'READ_ONLY'          // cp into a read-only rootfs or volume
  | 'IO';                // a filesystem call failed (errno in the message)

/** A failure of volume or cp handling; messages name the volume, container or path. */
export class VolumeError extends TsbuildError<VolumeErrorCode> {}
