import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LayerSpec {
  /** Bytes of random file content in the layer. */
  size: number;
  gzip?: boolean;
  /** Where else the layer can be fetched from, as Windows base layers name Microsoft's servers. */
  urls?: string[];
  /** An OCI non-distributable layer (a foreign layer): registries should not be given it. */
  nonDistributable?: boolean;
}

export interface PlatformSpec {
  os: string;
  architecture: string;
  layers: LayerSpec[];
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  /** Digest of the top manifest or index: what every registry must resolve the tag to. */
  digest: string;
  /** The top manifest or index, as a referrer's `subject` names it. */
  descriptor: Descriptor;
  /** The image manifests: one per platform (the top one itself when it is a single manifest), or the artifact. */
  manifests: Descriptor[];
  /** Sum of all distinct blob sizes (configs and layers). */
  blobBytes: number;
  largestBlob: number;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  platform?: { os: string; architecture: string };
  artifactType?: string;
}

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';

/** Content-addressed blobs in an OCI layout's blobs/sha256; `finish` names the top one in index.json. */
function layoutWriter(dir: string) {
  const blobsDir = join(dir, 'blobs', 'sha256');
  mkdirSync(blobsDir, { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const sizes = new Map<string, number>();
  const notBlobs = new Set<string>();
  const bytes = (mediaType: string, content: Buffer): Descriptor => {
    const hex = createHash('sha256').update(content).digest('hex');
    writeFileSync(join(blobsDir, hex), content);
    sizes.set(hex, content.length);
    return { mediaType, digest: `sha256:${hex}`, size: content.length };
  };
  const json = (mediaType: string, value: unknown) => bytes(mediaType, Buffer.from(JSON.stringify(value)));
  return {
    blobsDir,
    json,
    /** Writes an image manifest or index; manifests do not count as blob bytes. */
    manifest(value: { mediaType: string; [field: string]: unknown }): Descriptor {
      const d = json(value.mediaType, { schemaVersion: 2, ...value });
      notBlobs.add(d.digest.slice(7));
      return d;
    },
    layer(d: Descriptor): void {
      sizes.set(d.digest.slice(7), d.size);
    },
    finish(top: Descriptor, tag: string, manifests: Descriptor[]): BuiltImage {
      const { platform: _, ...descriptor } = top;
      writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
      const blobSizes = [...sizes].filter(([hex]) => !notBlobs.has(hex)).map(([, size]) => size);
      return { layoutDir: dir, tag, digest: top.digest, descriptor, manifests, blobBytes: blobSizes.reduce((a, b) => a + b, 0), largestBlob: Math.max(...blobSizes) };
    },
  };
}

/**
 * Writes an OCI image layout with real tar layers of random content: one image manifest, or an OCI index when
 * several platforms are given. Layers are streamed to disk, so large images cost no memory.
 */
export async function buildOciLayout(dir: string, tag: string, platforms: PlatformSpec[]): Promise<BuiltImage> {
  const layout = layoutWriter(dir);
  const manifests: Descriptor[] = [];
  let layerNo = 0;
  for (const p of platforms) {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const spec of p.layers) {
      const { descriptor, diffId } = await writeLayer(layout.blobsDir, `${p.architecture}-layer-${layerNo++}`, spec);
      layout.layer(descriptor);
      layers.push(descriptor);
      diffIds.push(diffId);
    }
    const config = layout.json('application/vnd.oci.image.config.v1+json', {
      architecture: p.architecture,
      os: p.os,
      rootfs: { type: 'layers', diff_ids: diffIds },
      config: { Cmd: ['/bin/true'] },
    });
    const manifest = layout.manifest({ mediaType: ociManifest, config, layers });
    manifests.push({ ...manifest, platform: { os: p.os, architecture: p.architecture } });
  }
  const top = manifests.length === 1 ? manifests[0] : layout.manifest({ mediaType: ociIndex, manifests });
  return layout.finish(top, tag, manifests);
}

export interface ArtifactSpec {
  /** Small documents, each a layer: a signature payload, an SBOM, an attestation envelope. */
  layers: { mediaType: string; content: unknown; annotations?: Record<string, string> }[];
  /**
   * An OCI 1.1 artifact: what it is and the manifest it refers to (its `subject`), with the empty config. Without
   * it, an artifact as cosign writes it for its `sha256-<hex>.sig` tags: an image config and no subject.
   */
  refers?: { artifactType: string; subject: Descriptor };
}

/** Writes a layout holding one referrer (a signature, SBOM or attestation) under `tag`. */
export function buildArtifactLayout(dir: string, tag: string, spec: ArtifactSpec): BuiltImage {
  const layout = layoutWriter(dir);
  const layers = spec.layers.map((l) => ({ ...layout.json(l.mediaType, l.content), ...(l.annotations ? { annotations: l.annotations } : {}) }));
  const config = spec.refers
    ? layout.json('application/vnd.oci.empty.v1+json', {})
    : layout.json('application/vnd.oci.image.config.v1+json', { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} });
  const artifact = { ...layout.manifest({ mediaType: ociManifest, ...spec.refers, config, layers }), ...(spec.refers && { artifactType: spec.refers.artifactType }) };
  return layout.finish(artifact, tag, [artifact]);
}

async function writeLayer(blobsDir: string, name: string, spec: LayerSpec): Promise<{ descriptor: Descriptor; diffId: string }> {
  const tmp = join(blobsDir, `.tmp-${name}`);
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let blobSize = 0;
  const tap = (hash: ReturnType<typeof createHash>, count?: (n: number) => void) =>
    new Transform({
      transform(chunk: Buffer, _e, done) {
        hash.update(chunk);
        count?.(chunk.length);
        done(null, chunk);
      },
    });
  const tar = Readable.from(tarOfOneFile(`${name}.bin`, spec.size)).pipe(tap(diffHash));
  const blob = spec.gzip ? tar.pipe(createGzip({ level: 1 })) : tar;
  await pipeline(
    blob,
    tap(blobHash, (n) => (blobSize += n)),
    createWriteStream(tmp),
  );
  const hex = blobHash.digest('hex');
  renameSync(tmp, join(blobsDir, hex));
  const mediaType = `application/vnd.oci.image.layer.${spec.nonDistributable ? 'nondistributable.' : ''}v1.tar${spec.gzip ? '+gzip' : ''}`;
  const descriptor = { mediaType, digest: `sha256:${hex}`, size: blobSize, ...(spec.urls && { urls: spec.urls }) };
  return { descriptor, diffId: `sha256:${diffHash.digest('hex')}` };
}

/** A ustar archive holding one file of random bytes, generated piece by piece. */
function* tarOfOneFile(name: string, size: number): Generator<Buffer> {
  yield ustarHeader(name, size);
  for (let left = size; left > 0;) {
    const n = Math.min(left, 1024 * 1024);
    yield randomFillSync(Buffer.allocUnsafe(n));
    left -= n;
  }
  yield tarPadding(size);
}

/** The 512-byte ustar header of a regular file, modified at `mtime` (seconds; now by default). */
export function ustarHeader(name: string, size: number, mtime = Math.floor(Date.now() / 1000), mode = 0o644): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write(`${mode.toString(8).padStart(7, '0')}\0`, 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write(`${mtime.toString(8).padStart(11, '0')}\0`, 136);
  header.write('        ', 148); // checksum field counts as spaces while summing
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** What follows a file's content in a ustar archive: padding to a block, then the two empty end blocks. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc(((512 - (size % 512)) % 512) + 1024);
}

export interface RegistryLogin {
  url: string;
  username?: string;
  password?: string;
}

function skopeoTarget(reg: RegistryLogin, image: string): string {
  return `docker://${new URL(reg.url).host}/${image}`;
}

function creds(flag: string, reg: RegistryLogin): string[] {
  return reg.username ? [flag, `${reg.username}:${reg.password}`] : [];
}

/**
 * Pushes a layout to a registry the way a user would: `skopeo copy --all`, digests preserved; or, with
 * `dockerFormat`, converted to a Docker manifest list of Docker v2 schema 2 manifests (new digests). With
 * `byDigest`, no tag is written, as OCI 1.1 clients push a referrer.
 */
export async function pushWithSkopeo(image: BuiltImage, reg: RegistryLogin, repository: string, opts: { dockerFormat?: boolean; byDigest?: boolean } = {}): Promise<void> {
  await run(
    'skopeo',
    [
      'copy',
      '--all',
      '--quiet',
      '--dest-tls-verify=false',
      ...(opts.dockerFormat ? ['--format', 'v2s2'] : ['--preserve-digests']),
      ...creds('--dest-creds', reg),
      `oci:${image.layoutDir}:${image.tag}`,
      skopeoTarget(reg, opts.byDigest ? `${repository}@${image.digest}` : `${repository}:${image.tag}`),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
}

/** The manifest a registry serves for an image, byte for byte: `skopeo inspect --raw` (independent of berth). */
export async function manifestWithSkopeo(reg: RegistryLogin, image: string): Promise<Buffer> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds('--creds', reg), skopeoTarget(reg, image)], {
    encoding: 'buffer',
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** The digest a registry serves for an image, computed from `skopeo inspect --raw`. */
export async function digestWithSkopeo(reg: RegistryLogin, image: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await manifestWithSkopeo(reg, image))
    .digest('hex')}`;
}
