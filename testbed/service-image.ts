// A tiny HTTP service for the tests that run containers on machines: busybox-static's httpd (from this host's
// Debian sources, as every other package here) serving a page that names its version. Nothing can be pulled from a
// public registry here, so the image is made from a rootfs: imported into an engine, or pushed to a test registry.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type Dockerode from 'dockerode';
import type { Manifest, RegistryClient } from '../activities/registry/client.ts';
import { berthCacheDir } from '../embedded/docker-engine.ts';
import { hostEngine } from './hosts.ts';
import { ustarHeader } from './oci-layout.ts';

const run = promisify(execFile);

export const serviceImageRepository = 'berth-test/httpd';
/** The port httpd listens on inside the container. */
export const servicePort = 80;

export interface ServiceImage {
  repository: string;
  version: string;
  /** `berth-test/httpd:<version>` */
  ref: string;
  /** The rootfs as an uncompressed tar: the image's one layer. */
  rootfs: Buffer;
  /** What `/` answers: `berth-test/httpd <version>` and a newline. */
  page: string;
  /** Whether `/healthz` answers 200 (a version made to fail its health check answers 404 there). */
  healthy: boolean;
}

/** What the image runs: httpd in the foreground, serving /www. */
const cmd = ['/bin/busybox', 'httpd', '-f', '-p', String(servicePort), '-h', '/www'];

/** busybox-static's binary, downloaded once with apt-get (this host's sources) and cached under ~/.cache/berth. */
async function busybox(): Promise<Buffer> {
  const dir = join(berthCacheDir(), 'busybox-static');
  const binary = join(dir, 'busybox');
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const work = mkdtempSync(join(dir, 'download-'));
    try {
      await run('apt-get', ['download', '-q', 'busybox-static'], { cwd: work });
      const [deb] = readdirSync(work).filter((f) => f.endsWith('.deb'));
      await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./bin/busybox', 'sh', join(work, deb), work]);
      // Parallel test files may race here: the rename is atomic, and either copy is the same binary.
      renameSync(join(work, 'bin', 'busybox'), binary);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return readFileSync(binary);
}

/** A ustar archive of these files (a fixed mtime: the same version is the same bytes, so the same digest). */
function tar(files: { name: string; content: Buffer; mode?: number }[]): Buffer {
  const parts = files.flatMap(({ name, content, mode }) => [ustarHeader(name, content.length, 0, mode), content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

/** The service at `version`; `healthy: false` makes one whose /healthz is missing (404). */
export async function serviceImage(version: string, opts: { healthy?: boolean } = {}): Promise<ServiceImage> {
  const healthy = opts.healthy ?? true;
  const page = `${serviceImageRepository} ${version}\n`;
  const rootfs = tar([{ name: 'bin/busybox', content: await busybox(), mode: 0o755 }, { name: 'www/index.html', content: Buffer.from(page) }, ...(healthy ? [{ name: 'www/healthz', content: Buffer.from('ok\n') }] : [])]);
  return { repository: serviceImageRepository, version, ref: `${serviceImageRepository}:${version}`, rootfs, page, healthy };
}

/** `docker import` of the image into an engine (a machine's, through withMachineEngine), as `image.ref`. */
export async function importServiceImage(docker: Dockerode, image: ServiceImage): Promise<void> {
  const changes = [`CMD ${JSON.stringify(cmd)}`, `EXPOSE ${servicePort}/tcp`];
  const stream = await docker.importImage(Readable.from([image.rootfs]), { repo: image.repository, tag: image.version, changes } as object);
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
      const failure = err?.message ?? events.find((e) => e.error)?.error;
      if (failure) reject(new Error(`docker import of ${image.ref} failed: ${failure}`));
      else resolve();
    }),
  );
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Pushes the image as an OCI image (one gzipped layer) to `repository:version` of a registry; returns its digest. */
export async function pushServiceImage(client: RegistryClient, image: ServiceImage, repository = image.repository): Promise<string> {
  const layer = gzipSync(image.rootfs);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: cmd, ExposedPorts: { [`${servicePort}/tcp`]: {} }, Labels: { 'berth.test/version': image.version } },
      rootfs: { type: 'layers', diff_ids: [sha256(image.rootfs)] },
    }),
  );
  const descriptor = (mediaType: string, bytes: Buffer) => ({ mediaType, digest: sha256(bytes), size: bytes.length });
  for (const blob of [layer, config]) await client.uploadBlob(repository, { digest: sha256(blob), size: blob.length }, async () => Readable.from([blob]));
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [descriptor('application/vnd.oci.image.layer.v1.tar+gzip', layer)],
    }),
  );
  const manifest: Manifest = { mediaType, digest: sha256(bytes), bytes };
  await client.putManifest(repository, image.version, manifest);
  return manifest.digest;
}

/**
 * The berth.yaml parts for a pool `front` of `machines` docker-provider machines that run an engine each (profile
 * `engine`) and pull from `idcRegistryPort` on the host, reached as root with the key in the env var `keyEnv`.
 */
export async function serviceClusterConfig(name: string, idc: string, keyEnv: string, idcRegistryPort: number, machines: number) {
  const engine = await hostEngine();
  return {
    rateCard: { docker: { small: 0.01 } },
    initProfiles: { engine: [{ hostname: {} }, { docker: { mirror: false } }] },
    clusters: [
      {
        name,
        idc,
        provider: { kind: 'docker', socketPath: engine.socketPath, image: engine.image.tag },
        ssh: { privateKey: { env: keyEnv } },
        // The machines see the host's loopback, where the IDC registry listens, as 10.0.2.2.
        registryAddress: `10.0.2.2:${idcRegistryPort}`,
        pools: [{ name: 'front', instanceType: 'small', initProfile: 'engine', maxConcurrentCreates: machines }],
      },
    ],
  };
}
