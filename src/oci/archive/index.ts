/** docker-archive and OCI archive read/write. */
export { writeArchive, dockerManifest, type ArchiveFormat, type WriteArchiveOptions, type DockerArchiveManifestEntry } from './write.js';
export { readArchive, readArchivePath, readArchiveStream, readLayoutDir, sniffCompression, type ReadArchiveResult } from './read.js';
