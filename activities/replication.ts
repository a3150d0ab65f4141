import { ApplicationFailure, Context } from '@temporalio/activity';
import { findRegistry, type BerthConfig } from '../config/load.ts';
import { RegistryClient } from './registry/client.ts';
import { copyImage, type CopyImageResult, type CopyProgress } from './registry/copy-image.ts';
import { resolveCredentials } from './registry/credentials.ts';
import { RegistryError } from './registry/errors.ts';
import { parseImageReference } from './registry/reference.ts';
import { copyProgressSignal } from '../workflows/replicate-image.ts';

export interface CopyToRegistryInput {
  image: string;
  source: string;
  target: string;
}

export interface CopyToRegistryResult extends CopyImageResult {
  durationMs: number;
}

/** How often a running copy tells its workflow how far it got (the `progress` query reads it). */
const progressSignalIntervalMs = 2000;

/**
 * Activities that move images between registries. They receive registry names only; URLs and credentials come
 * from this worker's config, so no secret travels through Temporal.
 */
export function createReplicationActivities(config: BerthConfig) {
  const clients = new Map<string, RegistryClient>();
  const clientFor = (name: string): RegistryClient => {
    let client = clients.get(name);
    if (!client) {
      const registry = findRegistry(config, name);
      if (!registry) throw ApplicationFailure.nonRetryable(`registry "${name}" is not in this worker's config`, 'UnknownRegistry');
      client = new RegistryClient({
        name,
        baseUrl: registry.url,
        credentials: resolveCredentials(name, registry.credentials),
        chunkSize: config.copy.chunkSizeMiB * 1024 * 1024,
      });
      clients.set(name, client);
    }
    return client;
  };

  return {
    /** Copies one image (all platforms) from one registry to another and verifies the digest on the target. */
    async copyImageToRegistry(input: CopyToRegistryInput): Promise<CopyToRegistryResult> {
      const ctx = Context.current();
      const started = Date.now();
      const { repository, reference } = parseImageReference(input.image);
      const workflowId = ctx.info.workflowExecution?.workflowId;
      let lastSignal = 0;
      const onProgress = (p: CopyProgress) => {
        ctx.heartbeat(p);
        if (!workflowId || Date.now() - lastSignal < progressSignalIntervalMs) return;
        lastSignal = Date.now();
        const { copiedDigests: _, uploads: __, ...counts } = p;
        // Progress is informative: a lost signal must not fail the copy.
        ctx.client.workflow
          .getHandle(workflowId)
          .signal(copyProgressSignal, { target: input.target, attempt: ctx.info.attempt, ...counts }).catch((err) => ctx.log.warn('progress signal failed', { err }));
      };
      try {
        const source = clientFor(input.source);
        const target = clientFor(input.target);
        const result = await copyImage({
          source,
          sourceRepository: repository,
          target,
          targetRepository: repository,
          reference,
          concurrency: config.copy.blobConcurrency,
          resumeFrom: ctx.info.heartbeatDetails as CopyProgress | undefined,
          onProgress,
          signal: ctx.cancellationSignal,
        });
        return { ...result, durationMs: Date.now() - started };
      } catch (err) {
        if (err instanceof RegistryError) {
          throw ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: !err.retryable, nextRetryDelay: err.opts.retryAfterMs });
        }
        throw err;
      }
    },
  };
}
