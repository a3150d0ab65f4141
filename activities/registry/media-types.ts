export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  /** OCI 1.1's artifact manifest (dropped before the release, still stored by some registries): `blobs`, no config. */
  ociArtifactManifest: 'application/vnd.oci.artifact.manifest.v1+json',
} as const;

export const manifestAccept = Object.values(MediaType).join(', ');

export function isIndex(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/**
 * Layers that must not be pushed to another registry (Windows base layers, licensed content): they live at their
 * `urls`. Docker's foreign layer and OCI's non-distributable layers; any other layer is the registry's to serve.
 */
const nonDistributable = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/** Whether a blob is copied with its image: decided by media type, as crane does, not by the presence of `urls`. */
export function isDistributable(blob: Descriptor): boolean {
  return !nonDistributable.has(blob.mediaType);
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  platform?: { os: string; architecture: string; variant?: string };
  /** Set on a referrer's descriptor in a referrers index: what the artifact is (a signature, an SBOM). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The parts of an image manifest, artifact manifest or index the copier needs. */
export interface ManifestDocument {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  /** An artifact manifest's content, in place of config and layers. */
  blobs?: Descriptor[];
  manifests?: Descriptor[];
}
