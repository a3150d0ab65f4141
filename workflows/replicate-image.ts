import { ApplicationFailure, isCancellation, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities, CopyToRegistryResult } from '../activities/index.ts';
import { activityOptions, activityTiming, resolveOptions } from '../contracts/activity-timing.ts';
import { copyProgressSignal, progressQuery, type ReplicateImageInput, type ReplicateImageResult, type TargetProgress } from '../contracts/replication.ts';
import { describeFailure } from './failures.ts';

/**
 * Copies one image from a source registry to every target in parallel, verified by digest on each target. The
 * source's tag is resolved once, first, so every target gets the same image even if the tag moves meanwhile.
 */
export async function replicateImage(input: ReplicateImageInput): Promise<ReplicateImageResult> {
  const { image, source, targets } = input;
  const progress: Record<string, TargetProgress> = {};
  for (const t of targets) {
    progress[t.registry] = { idc: t.idc, status: 'copying', attempt: 1, bytesCopied: 0, bytesTotal: 0, blobsTotal: 0, blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0 };
  }
  setHandler(progressQuery, () => progress);
  setHandler(copyProgressSignal, ({ target, ...counts }) => {
    const p = progress[target];
    if (p?.status === 'copying' && counts.attempt >= p.attempt) Object.assign(p, counts);
  });

  let digest: string;
  if (input.digest !== undefined) {
    digest = input.digest;
  } else {
    const { resolveImage } = proxyActivities<Activities>(resolveOptions(image, source));
    try {
      ({ digest } = await resolveImage({ image, registry: source.registry }));
    } catch (err) {
      if (isCancellation(err)) throw err;
      throw ApplicationFailure.create({ type: 'ReplicationFailed', message: `${image} cannot be read on ${source.registry}: ${describeFailure(err)}`, nonRetryable: true });
    }
  }
  for (const p of Object.values(progress)) p.digest = digest;
  // Each target's signals are paced so that all of them together send at most one every 2 s: a long copy to many
  // targets keeps its history far below Temporal's limits.
  const progressSignalMs = Math.max(5000, 2000 * targets.length);

  const results: ReplicateImageResult = {};
  const failures: string[] = [];
  await Promise.all(
    targets.map(async (t) => {
      const { copyImageToRegistry } = proxyActivities<Activities>(activityOptions(activityTiming.copyImage, { maximumAttempts: input.maxAttempts, taskQueue: t.taskQueue, summary: `copy ${image} ${source.idc} -> ${t.idc}` }));
      const p = progress[t.registry];
      try {
        const r: CopyToRegistryResult = await copyImageToRegistry({ image, digest, source: source.registry, target: t.registry, progressSignalMs, pipeline: input.pipeline });
        results[t.registry] = { digest: r.digest, bytesCopied: r.bytesCopied, blobsCopied: r.blobsCopied, blobsSkipped: r.blobsSkipped, referrers: r.referrers, durationMs: r.durationMs };
        Object.assign(p, { status: 'done', digest: r.digest, bytesCopied: r.bytesCopied, blobsCopied: r.blobsCopied, blobsSkipped: r.blobsSkipped });
      } catch (err) {
        if (isCancellation(err)) throw err;
        const message = describeFailure(err);
        Object.assign(p, { status: 'failed', error: message });
        failures.push(`${t.registry}: ${message}`);
      }
    }),
  );
  if (failures.length > 0) {
    throw ApplicationFailure.create({
      type: 'ReplicationFailed',
      message: `${image} did not replicate to ${failures.length} of ${targets.length} targets; ${failures.join('; ')}`,
      nonRetryable: true,
      details: [{ results, progress }],
    });
  }
  return results;
}
