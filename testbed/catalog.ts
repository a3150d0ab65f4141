// Large catalogs of tiny images for sync tests and the sync benchmark, pushed straight through the registry API:
// skopeo, one process per image, would take most of an hour for the thousands of tags these need.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Manifest, RegistryClient } from '../activities/registry/client.ts';
import { tarPadding, ustarHeader } from './oci-layout.ts';

export interface TinyImageRef {
  repository: string;
  tag: string;
  /** Another image under the same tag: its content says so, so its digest differs. */
  variant?: string;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** The one layer of a repository's tiny images: an uncompressed tar holding a small file that names the repository. */
function tinyLayer(repository: string): Buffer {
  const text = Buffer.from(`${repository}\n`);
  // A fixed time: the same bytes, so the same digest, every time it is built.
  return Buffer.concat([ustarHeader('repository.txt', text.length, 0), text, tarPadding(text.length)]);
}

/** An OCI image of its repository's layer, with a config that names the image: its digest is its own. */
function tinyImage({ repository, tag, variant = '' }: TinyImageRef) {
  const layer = tinyLayer(repository);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, config: { Labels: { 'berth.test/image': `${repository}:${tag}${variant}` } } }));
  const descriptor = (mediaType: string, bytes: Buffer) => ({ mediaType, digest: sha256(bytes), size: bytes.length });
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)],
    }),
  );
  const manifest: Manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(bytes), bytes };
  return { config, manifest };
}

/** Runs `fn` over `items`, `concurrency` at a time. */
async function each<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const upload = (client: RegistryClient, repository: string, blob: Buffer) => client.uploadBlob(repository, { digest: sha256(blob), size: blob.length }, async () => Readable.from([blob]));

/**
 * Pushes tiny images, `concurrency` at a time: each repository's layer once, then per image its config and
 * manifest. Returns each `repository:tag`'s digest.
 */
export async function pushTinyImages(client: RegistryClient, refs: TinyImageRef[], concurrency = 16): Promise<Map<string, string>> {
  await each([...new Set(refs.map((r) => r.repository))], concurrency, (repository) => upload(client, repository, tinyLayer(repository)));
  const digests = new Map<string, string>();
  await each(refs, concurrency, async (ref) => {
    const { config, manifest } = tinyImage(ref);
    await upload(client, ref.repository, config);
    await client.putManifest(ref.repository, ref.tag, manifest);
    digests.set(`${ref.repository}:${ref.tag}`, manifest.digest);
  });
  return digests;
}

/** `repositories` × `tags` references: `<prefix>-<r>` repositories, tags `1.<t>`. */
export function catalogRefs(prefix: string, repositories: number, tags: number): TinyImageRef[] {
  return Array.from({ length: repositories }, (_, r) => Array.from({ length: tags }, (_, t) => ({ repository: `${prefix}-${r}`, tag: `1.${t}` }))).flat();
}
