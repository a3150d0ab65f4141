import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import type { BerthConfig } from '../../config/load.ts';
import { activityTiming } from '../../contracts/activity-timing.ts';
import { recordCopy } from '../../metrics/registry.ts';
import type { ClientLimits, RegistryClients } from '../registry/clients.ts';
import { copyImage, type CopyProgress } from '../registry/copy-image.ts';
import { RegistryError } from '../registry/errors.ts';
import { isTransient, retryTransient } from './attempts.ts';
import { lanes } from './lanes.ts';

export interface ImageToCopy {
  repository: string;
  tag: string;
  /** What the diff saw on the source: the target gets exactly this. */
  digest: string;
}

export interface CopyImagesInput {
  source: string;
  target: string;
  images: ImageToCopy[];
  /** A sync rule's limits: requests per second per registry, blob bytes per second over this link. */
  limits?: Pick<ClientLimits, 'requestsPerSecond' | 'bytesPerSecond'>;
  /** The activity's maximumAttempts: the last attempt reports what still fails instead of failing. */
  maxAttempts: number;
}

export interface CopyImagesResult {
  /** Images that are not on the target, and why; every other one is, at its digest. */
  failed: { repository: string; tag: string; error: string }[];
}

/** What a batch has done so far, in its heartbeats: a retry copies only the rest, continuing uploads under way. */
interface BatchProgress {
  done: number[];
  failed: { index: number; error: string }[];
  copying: Record<number, Pick<CopyProgress, 'copiedDigests' | 'uploads'>>;
}

/** Images copied at once by one batch. */
const imagesAtOnce = 8;
const heartbeatEveryMs = activityTiming.copyImages.heartbeat.everyMs;

/**
 * A sync's copies, a batch of images per activity: one round trip through Temporal for many small images, each
 * copied as `copyImageToRegistry` copies one (every platform and referrer, verified by digest on the target). An
 * image that fails for good is reported and the others go on. Transient faults fail the attempt once the rest is
 * done, so Temporal retries it (with its backoff) for those images only; the last attempt reports them.
 */
export function createCopyImages(config: BerthConfig, clientFor: RegistryClients) {
  return async function copyImages({ source, target, images, limits, maxAttempts }: CopyImagesInput): Promise<CopyImagesResult> {
    const ctx = Context.current();
    // Every request in flight listens for the activity's cancellation.
    setMaxListeners(4 * imagesAtOnce * config.copy.blobConcurrency, ctx.cancellationSignal);
    const progress: BatchProgress = (ctx.info.heartbeatDetails as BatchProgress | undefined) ?? { done: [], failed: [], copying: {} };
    const settled = new Set([...progress.done, ...progress.failed.map((f) => f.index)]);
    const pending = images.map((_, i) => i).filter((i) => !settled.has(i));
    const link = `${source}->${target}`;
    const from = clientFor(source, { ...limits, link });
    const to = clientFor(target, { requestsPerSecond: limits?.requestsPerSecond });
    const transient: { index: number; error: RegistryError }[] = [];
    const copy = async (index: number) => {
      const { repository, tag, digest } = images[index];
      try {
        const copied = await copyImage({
          source: from,
          sourceRepository: repository,
          target: to,
          targetRepository: repository,
          reference: digest,
          targetReference: tag,
          concurrency: config.copy.blobConcurrency,
          resumeFrom: progress.copying[index],
          onProgress: ({ copiedDigests, uploads }) => (progress.copying[index] = { copiedDigests, uploads }),
          signal: ctx.cancellationSignal,
        });
        recordCopy(link, copied);
        progress.done.push(index);
        delete progress.copying[index];
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw err;
        // A transient fault keeps the image's uploads for the retry to continue.
        if (isTransient(err)) transient.push({ index, error: err });
        else {
          progress.failed.push({ index, error: (err as Error).message });
          delete progress.copying[index];
        }
      }
      ctx.heartbeat(progress);
    };
    const each = async (indices: number[]) => {
      let next = 0;
      await lanes(
        imagesAtOnce,
        () => next < indices.length,
        () => copy(indices[next++]),
      );
    };
    // Images of a repository share layers, as a rule. The first image of each repository goes before its siblings:
    // a registry on a filesystem writes a blob's link in place, and a sibling that checks the blob or puts a
    // manifest meanwhile reads it empty (400 DIGEST_INVALID). The siblings then find the shared layers there.
    const firsts = new Map<string, number>();
    for (const i of pending) if (!firsts.has(images[i].repository)) firsts.set(images[i].repository, i);
    const heartbeat = setInterval(() => ctx.heartbeat(progress), heartbeatEveryMs);
    try {
      await each([...firsts.values()]);
      const first = new Set(firsts.values());
      await each(pending.filter((i) => !first.has(i)));
    } finally {
      clearInterval(heartbeat);
    }
    retryTransient(
      transient.map((t) => t.error),
      images.length,
      'images',
      maxAttempts,
    );
    const failed = [...progress.failed, ...transient.map(({ index, error }) => ({ index, error: error.message }))];
    return { failed: failed.map(({ index, error }) => ({ repository: images[index].repository, tag: images[index].tag, error })) };
  };
}
