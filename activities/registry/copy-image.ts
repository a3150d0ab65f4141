import { pipeline } from 'node:stream/promises';
import type { RegistryClient, Manifest, UploadCheckpoint } from './client.ts';
import { DigestVerifier } from './digest-verifier.ts';
import { RegistryError } from './errors.ts';
import { isIndex, type Descriptor, type ManifestDocument } from './media-types.ts';

export interface CopyProgress {
  bytesTotal: number;
  bytesCopied: number;
  blobsTotal: number;
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  /** Blobs this copy has finished uploading: kept across retries so a resumed copy does not count them again. */
  copiedDigests: string[];
  /** Chunked uploads under way, by digest: a retry continues them instead of sending their bytes again. */
  uploads: Record<string, UploadCheckpoint>;
}

export interface CopyImageRequest {
  source: RegistryClient;
  sourceRepository: string;
  target: RegistryClient;
  targetRepository: string;
  /** Tag or digest to copy from the source. */
  reference: string;
  /** Tag or digest to store it under on the target; `reference` when not given. */
  targetReference?: string;
  /** Blobs uploaded at once. */
  concurrency: number;
  /** Progress of an earlier attempt of the same copy (from heartbeat details). */
  resumeFrom?: Pick<CopyProgress, 'copiedDigests' | 'uploads'>;
  onProgress?: (progress: CopyProgress) => void;
  signal?: AbortSignal;
}

/** How often a copy reports progress while bytes flow. */
const progressIntervalMs = 1000;

export interface CopyImageResult {
  digest: string;
  mediaType: string;
  manifests: number;
  bytesCopied: number;
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
}

/**
 * Copies one image, every platform of an index included, and checks at the end that the target resolves the
 * reference to the source's digest. Blobs the target already has are skipped; blobs go first, then the
 * per-platform manifests, then the top manifest, so the tag appears only once everything under it is there.
 */
export async function copyImage(req: CopyImageRequest): Promise<CopyImageResult> {
  const { source, target, sourceRepository, targetRepository, reference, signal } = req;
  const targetReference = req.targetReference ?? reference;
  const top = await source.getManifest(sourceRepository, reference, signal);
  const { manifests, blobs } = await collectImage(source, sourceRepository, top, signal);

  const resumed = new Set(req.resumeFrom?.copiedDigests ?? []);
  const sizeOf = (digests: Iterable<string>) => [...digests].reduce((n, d) => n + (blobs.get(d)?.size ?? 0), 0);
  const progress: CopyProgress = {
    bytesTotal: sizeOf(blobs.keys()),
    // Bytes of blob content put on the target, each blob counted once however many attempts it took.
    bytesCopied: sizeOf(resumed),
    blobsTotal: blobs.size,
    blobsCopied: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    copiedDigests: [...resumed],
    uploads: { ...req.resumeFrom?.uploads },
  };
  let lastReport = 0;
  const report = () => {
    lastReport = Date.now();
    req.onProgress?.({ ...progress, copiedDigests: [...progress.copiedDigests], uploads: { ...progress.uploads } });
  };

  const upToDate = (await target.headManifest(targetRepository, targetReference, signal)) === top.digest;
  if (upToDate) {
    // Blobs an earlier attempt uploaded (it stopped before it could report the tag) count as copied.
    progress.blobsCopied = [...blobs.keys()].filter((d) => resumed.has(d)).length;
    progress.blobsSkipped = blobs.size - progress.blobsCopied;
  } else {
    const sameRegistry = source.baseUrl === target.baseUrl;
    await forEachLimit([...blobs.values()], req.concurrency, async (blob) => {
      if (await target.hasBlob(targetRepository, blob.digest, signal)) {
        if (resumed.has(blob.digest)) progress.blobsCopied++;
        else progress.blobsSkipped++;
      } else if (sameRegistry && (await target.mountBlob(targetRepository, blob.digest, sourceRepository, signal))) {
        progress.blobsMounted++;
      } else {
        let feeding: Promise<unknown> = Promise.resolve();
        let counted = 0; // this blob's share of bytesCopied, taken back if its upload starts over
        const open = async (offset: number) => {
          const content = await source.getBlob(sourceRepository, blob.digest, signal, offset);
          progress.bytesCopied += offset - counted; // up to offset: sent by an earlier attempt, continued now
          counted = offset;
          const verifier = new DigestVerifier(blob, offset, (n) => {
            counted += n;
            progress.bytesCopied += n;
            // Report while bytes flow, not only per blob: a large blob on a slow link must keep heartbeating.
            if (Date.now() - lastReport >= progressIntervalMs) report();
          });
          // pipeline() carries a verifier error to the upload (which then fails) and destroys the source stream.
          feeding = pipeline(content, verifier).catch(() => undefined);
          return verifier;
        };
        await target.uploadBlob(targetRepository, blob, open, {
          signal,
          resume: progress.uploads[blob.digest],
          onCheckpoint: (checkpoint) => {
            progress.uploads[blob.digest] = checkpoint;
            report();
          },
        });
        await feeding;
        delete progress.uploads[blob.digest];
        progress.blobsCopied++;
        progress.copiedDigests.push(blob.digest);
      }
      report();
    });
    for (const m of manifests) await target.putManifest(targetRepository, m.digest, m, signal);
    await target.putManifest(targetRepository, targetReference, top, signal);
    // Only the target's own answer counts: read the tag back.
    const landed = await target.headManifest(targetRepository, targetReference, signal);
    if (landed !== top.digest) {
      throw new RegistryError('DigestMismatch', `${targetRepository}:${targetReference} on ${target.name} resolves to ${landed ?? 'nothing'}, the source has ${top.digest}`);
    }
  }
  report();
  return {
    digest: top.digest,
    mediaType: top.mediaType,
    manifests: manifests.length + 1,
    // Blobs this copy put on the target, each counted once across attempts. A blob finished just before a crash,
    // after the last heartbeat, is found on the target by the next attempt and counted as skipped.
    bytesCopied: sizeOf(progress.copiedDigests),
    blobsCopied: progress.blobsCopied,
    blobsSkipped: progress.blobsSkipped,
    blobsMounted: progress.blobsMounted,
  };
}

/** Walks an index down to its image manifests; returns child manifests (children first) and the unique blobs. */
async function collectImage(
  source: RegistryClient,
  repository: string,
  top: Manifest,
  signal?: AbortSignal,
): Promise<{ manifests: Manifest[]; blobs: Map<string, Descriptor> }> {
  const manifests: Manifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const visit = async (m: Manifest, isTop: boolean): Promise<void> => {
    const doc = JSON.parse(m.bytes.toString('utf8')) as ManifestDocument;
    if (isIndex(m.mediaType) || doc.manifests) {
      for (const child of doc.manifests ?? []) await visit(await source.getManifest(repository, child.digest, signal), false);
    } else {
      for (const d of [doc.config, ...(doc.layers ?? [])]) {
        // Foreign layers (urls set) live outside the registry and are not copied, as docker and skopeo do.
        if (d && !d.urls?.length) blobs.set(d.digest, d);
      }
    }
    if (!isTop) manifests.push(m);
  };
  await visit(top, true);
  return { manifests, blobs };
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failed = true; // stop starting new work; in-flight lanes finish their current item
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, lane));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
