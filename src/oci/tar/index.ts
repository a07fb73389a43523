/**
 * Layer tars: a deterministic ustar+PAX writer, a streaming reader, directory → tar (with
 * overlayfs upper-dir conversion), safe extraction with OCI whiteouts, and layer compression.
 */
export type { TarEntry, TarEntryType } from './entry.js';
export {
  OVERLAY_OPAQUE_XATTR,
  OVERLAY_USER_OPAQUE_XATTR,
  WHITEOUT_META_PREFIX,
  WHITEOUT_OPAQUE,
  WHITEOUT_PREFIX,
} from './entry.js';
export { TarWriter, type TarWriterOptions } from './writer.js';
export { readTar } from './reader.js';
export { tarDirectory, type TarDirectoryOptions } from './from-dir.js';
export { extractLayer, type ExtractOptions } from './extract.js';
export {
  compressStream,
  decompressStream,
  detectCompression,
  writeLayer,
  setCompressionBackend,
  DEFAULT_GZIP_LEVEL,
  DEFAULT_ZSTD_LEVEL,
  type Backend,
  type Compression,
  type WriteLayerOptions,
} from './compress.js';
