/** docker-archive and OCI archive read/write. */
export { writeArchive, dockerManifest, type ArchiveFormat, type WriteArchiveOptions, type DockerArchiveManifestEntry } from './write.js';
export { readArchive, readArchivePath, readLayoutDir, sniffCompression, type ReadArchiveResult } from './read.js';
