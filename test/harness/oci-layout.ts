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
  /** Sum of all distinct blob sizes (configs and layers). */
  blobBytes: number;
  largestBlob: number;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
}

/**
 * Writes an OCI image layout with real tar layers of random content: one image manifest, or an OCI index when
 * several platforms are given. Layers are streamed to disk, so large images cost no memory.
 */
export async function buildOciLayout(dir: string, tag: string, platforms: PlatformSpec[]): Promise<BuiltImage> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  mkdirSync(blobsDir, { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const sizes = new Map<string, number>();
  const writeJson = (mediaType: string, value: unknown): Descriptor => {
    const bytes = Buffer.from(JSON.stringify(value));
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(blobsDir, hex), bytes);
    sizes.set(hex, bytes.length);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };

  const manifests: Descriptor[] = [];
  let layerNo = 0;
  for (const p of platforms) {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const spec of p.layers) {
      const { descriptor, diffId } = await writeLayer(blobsDir, `${p.architecture}-layer-${layerNo++}`, spec);
      sizes.set(descriptor.digest.slice(7), descriptor.size);
      layers.push(descriptor);
      diffIds.push(diffId);
    }
    const config = writeJson('application/vnd.oci.image.config.v1+json', {
      architecture: p.architecture,
      os: p.os,
      rootfs: { type: 'layers', diff_ids: diffIds },
      config: { Cmd: ['/bin/true'] },
    });
    const manifest = writeJson('application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers,
    });
    manifests.push({ ...manifest, platform: { os: p.os, architecture: p.architecture } });
  }
  const top =
    manifests.length === 1
      ? { ...manifests[0], platform: undefined }
      : writeJson('application/vnd.oci.image.index.v1+json', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  const blobSizes = [...sizes.values()];
  const manifestBytes = manifests.reduce((n, m) => n + m.size, 0) + (manifests.length > 1 ? top.size : 0);
  return { layoutDir: dir, tag, digest: top.digest, blobBytes: blobSizes.reduce((a, b) => a + b, 0) - manifestBytes, largestBlob: Math.max(...blobSizes) };
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
  await pipeline(blob, tap(blobHash, (n) => (blobSize += n)), createWriteStream(tmp));
  const hex = blobHash.digest('hex');
  renameSync(tmp, join(blobsDir, hex));
  const mediaType = spec.gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
  return { descriptor: { mediaType, digest: `sha256:${hex}`, size: blobSize }, diffId: `sha256:${diffHash.digest('hex')}` };
}

/** A ustar archive holding one file of random bytes, generated piece by piece. */
function* tarOfOneFile(name: string, size: number): Generator<Buffer> {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136);
  header.write('        ', 148); // checksum field counts as spaces while summing
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  yield header;
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1024 * 1024);
    yield randomFillSync(Buffer.allocUnsafe(n));
    left -= n;
  }
  yield Buffer.alloc((512 - (size % 512)) % 512 + 1024);
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
 * `dockerFormat`, converted to a Docker manifest list of Docker v2 schema 2 manifests (new digests).
 */
export async function pushWithSkopeo(image: BuiltImage, reg: RegistryLogin, repository: string, opts: { dockerFormat?: boolean } = {}): Promise<void> {
  await run('skopeo', [
    'copy', '--all', '--quiet', '--dest-tls-verify=false',
    ...(opts.dockerFormat ? ['--format', 'v2s2'] : ['--preserve-digests']),
    ...creds('--dest-creds', reg),
    `oci:${image.layoutDir}:${image.tag}`,
    skopeoTarget(reg, `${repository}:${image.tag}`),
  ], { maxBuffer: 16 * 1024 * 1024 });
}

/** The digest a registry serves for an image, computed from `skopeo inspect --raw` (independent of berth). */
export async function digestWithSkopeo(reg: RegistryLogin, image: string): Promise<string> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds('--creds', reg), skopeoTarget(reg, image)], {
    encoding: 'buffer',
    maxBuffer: 16 * 1024 * 1024,
  });
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}
