import { ApplicationFailure, Context } from '@temporalio/activity';
import { findRegistry, type BerthConfig } from '../config/load.ts';
import { copyProgressSignal, type Pipelining } from '../contracts/replication.ts';
import { recordCopy } from '../metrics/registry.ts';
import { asTemporalFailure } from './failures.ts';
import { HarborClient } from './registry/harbor/client.ts';
import { replicateWithHarbor, type HarborReplicationResult } from './registry/harbor/replicate.ts';
import { resolveCredentials } from './registry/credentials.ts';
import type { ClientLimits, RegistryClients } from './registry/clients.ts';
import { copyCounts, copyImage, type CopyImageResult, type CopyProgress } from './registry/copy-image.ts';
import { parseImageReference } from './registry/reference.ts';

export interface ResolveImageInput {
  image: string;
  registry: string;
}

export interface CopyToRegistryInput {
  /** As the user named it: the tag (if any) is what the target gets. */
  image: string;
  /** What the source resolved the image to when the replication began: every target gets exactly this. */
  digest: string;
  source: string;
  target: string;
  /** How often to tell the workflow how far the copy got (its `progress` query reads it); never when not given. */
  progressSignalMs?: number;
  /** A sync rule's limits: requests per second per registry, blob bytes per second over this link. */
  limits?: Pick<ClientLimits, 'requestsPerSecond' | 'bytesPerSecond'>;
  /** In a distribution, a copy that starts while its source is still receiving the image. */
  pipeline?: Pipelining;
}

export interface ReplicateViaHarborInput {
  /** `repository:tag` on the source Harbor. */
  image: string;
  source: string;
  target: string;
  /** How long Harbor's execution may run before berth stops it and fails. */
  deadlineMs: number;
}

export interface CopyToRegistryResult extends CopyImageResult {
  durationMs: number;
}

/** Heartbeats go out at least this often, also while waiting on a slow registry (a commit of a huge blob). */
const heartbeatEveryMs = 5000;

/**
 * Activities that move images between registries. They receive registry names only; URLs and credentials come
 * from this worker's config, so no secret travels through Temporal.
 */
export function createReplicationActivities(config: BerthConfig, clientFor: RegistryClients) {

  return {
    /** The digest an image reference points to on a registry, so that every target gets the same image. */
    async resolveImage({ image, registry }: ResolveImageInput): Promise<{ digest: string }> {
      const { repository, reference } = parseImageReference(image);
      return asTemporalFailure(async () => ({ digest: (await clientFor(registry).getManifest(repository, reference, Context.current().cancellationSignal)).digest }));
    },

    /** Copies one image (all platforms) from one registry to another and verifies the digest on the target. */
    async copyImageToRegistry(input: CopyToRegistryInput): Promise<CopyToRegistryResult> {
      const ctx = Context.current();
      const started = Date.now();
      const { repository, reference } = parseImageReference(input.image);
      const workflow = ctx.info.workflowExecution;
      let latest = ctx.info.heartbeatDetails as CopyProgress | undefined;
      const heartbeat = setInterval(() => ctx.heartbeat(latest), heartbeatEveryMs);
      // The first signal goes out only after one interval: a short copy reports through its result alone.
      let lastSignal = Date.now();
      let signalling: Promise<void> | undefined;
      const onProgress = (p: CopyProgress) => {
        latest = p;
        ctx.heartbeat(p);
        // One signal at a time, so they arrive in order; paced, so a long copy keeps its workflow history small.
        if (!workflow || input.progressSignalMs === undefined || signalling || Date.now() - lastSignal < input.progressSignalMs) return;
        lastSignal = Date.now();
        signalling = ctx.client.workflow
          .getHandle(workflow.workflowId, workflow.runId)
          .signal(copyProgressSignal, { target: input.target, attempt: ctx.info.attempt, ...copyCounts(p) })
          // Progress is informative: a lost signal must not fail the copy.
          .catch((err) => ctx.log.warn('progress signal failed', { err }))
          .finally(() => (signalling = undefined));
      };
      try {
        const result = await asTemporalFailure(() =>
          copyImage({
            source: clientFor(input.source, { ...input.limits, link: `${input.source}->${input.target}` }),
            sourceRepository: repository,
            target: clientFor(input.target, { requestsPerSecond: input.limits?.requestsPerSecond }),
            targetRepository: repository,
            reference: input.digest,
            targetReference: reference,
            concurrency: config.copy.blobConcurrency,
            // The source's own client when it is the distribution's source: it has the image, and its credentials.
            manifestSource: input.pipeline && input.pipeline.manifestsFrom !== input.source ? clientFor(input.pipeline.manifestsFrom) : undefined,
            waitForSource: input.pipeline?.waitForSource,
            inOrder: input.pipeline?.inOrder,
            resumeFrom: latest,
            onProgress,
            signal: ctx.cancellationSignal,
          }),
        );
        recordCopy(`${input.source}->${input.target}`, result);
        return { ...result, durationMs: Date.now() - started };
      } finally {
        clearInterval(heartbeat);
      }
    },

    /**
     * Replicates one tag with the source Harbor's own replication (mode: harbor), then verifies the digest on the
     * target. A stuck execution is stopped at the deadline; a cancelled activity stops it too.
     */
    async replicateViaHarbor({ image, source, target, deadlineMs }: ReplicateViaHarborInput): Promise<HarborReplicationResult> {
      const ctx = Context.current();
      const { repository, reference } = parseImageReference(image);
      const login = registryLogin(config, source);
      if (login.kind !== 'harbor') throw ApplicationFailure.nonRetryable(`${source} is not a Harbor (kind: ${login.kind}): mode harbor needs one`, 'RegistryRejected');
      const harbor = new HarborClient({ name: source, baseUrl: login.url, credentials: login.credentials });
      try {
        return await asTemporalFailure(() =>
          replicateWithHarbor({ source: harbor, target: registryLogin(config, target), repository, tag: reference, deadlineMs, signal: ctx.cancellationSignal, onPoll: (e) => ctx.heartbeat(e.status) }),
        );
      } finally {
        await harbor.close();
      }
    },
  };
}

/** The login of a registry in this worker's config, resolved from its reference. */
function registryLogin(config: BerthConfig, name: string) {
  const registry = findRegistry(config, name);
  if (!registry) throw ApplicationFailure.nonRetryable(`registry "${name}" is not in this worker's config`, 'UnknownRegistry');
  return { name, url: registry.url, kind: registry.kind, credentials: resolveCredentials(name, registry.credentials) };
}
