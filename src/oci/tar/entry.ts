/**
 * One member of a layer tar, independent of how it is encoded (ustar fields, PAX records,
 * GNU long names). Paths are relative, `/`-separated, without a trailing slash for directories.
 */
export interface TarEntry {
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (07777); no file type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Body size in bytes; 0 for everything but regular files. */
  size: number;
  /** Modification time in seconds since the epoch; may be fractional or negative. */
  mtime: number;
  /** Symlink target, or the archive path a hardlink points to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, values byte-exact (PAX `SCHILY.xattr.<name>`). */
  xattrs?: Map<string, Buffer>;
}

/** The kinds of tar members a layer may hold. */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** Prefix of an OCI whiteout file name (image-spec layer.md#whiteouts). */
export const WHITEOUT_PREFIX = '.wh.';
/** Name of the OCI opaque-directory marker. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
/** Prefix of AUFS metadata names, which are not whiteouts and are skipped on extraction. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
/** The overlayfs xattr marking an opaque directory. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
/** The unprivileged overlayfs variant (`userxattr` mount option). */
export const OVERLAY_USER_OPAQUE_XATTR = 'user.overlay.opaque';
