/**
 * Every media type tsbuild knows, defined here once
 * (image-spec media-types.md; Docker image manifest v2 schema 2).
 */
export const MediaTypes = {
  OciDescriptor: 'application/vnd.oci.descriptor.v1+json',
  OciLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerUncompressedLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  CosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  InTotoDsse: 'application/vnd.dsse.envelope.v1+json',
  SigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

/** A media type string; known ones are listed in {@link MediaTypes}. */
export type MediaType = (typeof MediaTypes)[keyof typeof MediaTypes] | (string & {});

/** Layer compression, as told by the media type suffix. */
export type Compression = 'none' | 'gzip' | 'zstd';

/** True for image indexes and Docker manifest lists. */
export function isIndex(mt: string): boolean {
  return mt === MediaTypes.OciIndex || mt === MediaTypes.DockerManifestList;
}

/** True for single-platform image manifests (OCI or Docker schema 2). */
export function isImageManifest(mt: string): boolean {
  return mt === MediaTypes.OciManifest || mt === MediaTypes.DockerManifest;
}

/** True for image config blobs (OCI or Docker). */
export function isConfig(mt: string): boolean {
  return mt === MediaTypes.OciConfig || mt === MediaTypes.DockerConfig;
}

/** True for any filesystem layer media type, OCI or Docker, any compression. */
export function isLayer(mt: string): boolean {
  return (
    mt.startsWith('application/vnd.oci.image.layer.') ||
    mt === MediaTypes.DockerLayer ||
    mt === MediaTypes.DockerForeignLayer ||
    mt === MediaTypes.DockerUncompressedLayer
  );
}

/** The compression a layer media type implies. */
export function layerCompression(mt: string): Compression {
  if (mt.endsWith('+gzip') || mt === MediaTypes.DockerLayer || mt === MediaTypes.DockerForeignLayer) return 'gzip';
  if (mt.endsWith('+zstd')) return 'zstd';
  return 'none';
}

/** The layer media type for a manifest flavour and compression. Docker schema2 has no zstd type. */
export function layerMediaType(flavour: 'oci' | 'docker', c: Compression): MediaType {
  if (flavour === 'docker') return c === 'none' ? MediaTypes.DockerUncompressedLayer : MediaTypes.DockerLayer;
  return c === 'gzip' ? MediaTypes.OciLayerGzip : c === 'zstd' ? MediaTypes.OciLayerZstd : MediaTypes.OciLayer;
}
