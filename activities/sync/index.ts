import { setMaxListeners } from 'node:events';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { DriftCursor } from '../../contracts/sync.ts';
import type { BerthConfig, SyncFilter } from '../../config/load.ts';
import type { RegistryClients } from '../registry/clients.ts';
import type { RegistryError } from '../registry/errors.ts';
import { asTemporalFailure } from '../failures.ts';
import { isTransient, lastAttempt, retryTransient } from './attempts.ts';
import { createCopyImages } from './copy-images.ts';
import { driftPage, tagLists, type RepositoryDrift, type TagLists } from './drift.ts';
import { compileFilter } from '../../config/filters.ts';
import { lanes } from './lanes.ts';

export interface ListRepositoriesInput {
  registry: string;
  filter: SyncFilter;
  requestsPerSecond?: number;
}

export interface ListRepositoryPageInput extends ListRepositoriesInput {
  /** The page starts after this repository (the last page's `next`). */
  after?: string;
  /** Repositories that pass the filter, at most. */
  limit: number;
}

export interface RepositoryPage {
  repositories: string[];
  /** Where the next page starts; none when the catalog has no more. */
  next?: string;
}

export interface DiffRepositoryInput {
  source: string;
  target: string;
  repository: string;
  tags: SyncFilter;
  /** Deletion sync: the target's other tags are read too, so that no digest they point to is deleted. */
  deleteExtra: boolean;
  requestsPerSecond?: number;
}

export interface DiffRepositoriesInput extends Omit<DiffRepositoryInput, 'repository'> {
  /** The batch's repositories, in order. */
  repositories: string[];
  from?: DriftCursor;
  /** Tags to fix per page, at most `driftPageItems`. */
  limit: number;
  /** The activity's maximumAttempts: the last attempt reports a repository it still cannot read instead of failing. */
  maxAttempts: number;
}

export interface DriftPageResult {
  /** Repository by repository (the first and last may be partial): what differs; items to fix <= driftPageItems + a few. */
  drifts: RepositoryDrift[];
  /** Repositories that could not be compared, and why. */
  failed: { repository: string; error: string }[];
  next?: DriftCursor;
}

export interface DeleteManifestInput {
  registry: string;
  repository: string;
  digest: string;
}

export interface DeleteManifestsInput {
  registry: string;
  manifests: { repository: string; digest: string }[];
  /** The activity's maximumAttempts: the last attempt reports what still fails instead of failing. */
  maxAttempts: number;
}

/**
 * Tags to fix (missing, different, extra) per drift page. A page's items are at most ~450 bytes each (a 128-character
 * tag and up to three digests), so a page stays far below Temporal's payload limits whatever the catalog.
 */
export const driftPageItems = 400;
/** Tags compared per drift page: a page of tags in step ends too, long before the activity's timeout. */
const driftPageReads = 20_000;
/** Tags read at once while diffing a repository (a manifest read on each side). */
const diffLanes = 8;

/** Activities of a scheduled sync: list what a rule covers, compare source and target, copy, delete what is extra. */
export function createSyncActivities(config: BerthConfig, clientFor: RegistryClients) {
  const pageSize = config.sync.pageSize;

  const catalogPage = async ({ registry, filter, requestsPerSecond, after, limit }: ListRepositoryPageInput): Promise<RepositoryPage> => {
    const ctx = Context.current();
    const keep = compileFilter(filter);
    const repositories: string[] = [];
    return asTemporalFailure(async () => {
      for await (const page of clientFor(registry, { requestsPerSecond }).listRepositories(pageSize, ctx.cancellationSignal, after)) {
        for (const name of page) {
          if (!keep(name)) continue;
          repositories.push(name);
          if (repositories.length >= limit) return { repositories, next: name };
        }
        ctx.heartbeat(repositories.length);
      }
      return { repositories };
    });
  };

  const clientsOf = (input: Pick<DiffRepositoryInput, 'source' | 'target' | 'requestsPerSecond'>) => ({
    source: clientFor(input.source, { requestsPerSecond: input.requestsPerSecond }),
    target: clientFor(input.target, { requestsPerSecond: input.requestsPerSecond }),
  });
  const listsOf = (input: DiffRepositoryInput) => {
    const { source, target } = clientsOf(input);
    return tagLists(source, target, input.repository, pageSize, Context.current().cancellationSignal);
  };
  const diffOne = (input: DiffRepositoryInput & { lists: TagLists; after?: string; limit: number; readLimit: number }) => {
    const ctx = Context.current();
    // Every request in flight listens for the activity's cancellation.
    setMaxListeners(4 * diffLanes, ctx.cancellationSignal);
    let beat = 0;
    return driftPage({
      ...clientsOf(input),
      repository: input.repository,
      lists: input.lists,
      covered: compileFilter(input.tags),
      deleteExtra: input.deleteExtra,
      after: input.after,
      limit: input.limit,
      readLimit: input.readLimit,
      lanes: diffLanes,
      signal: ctx.cancellationSignal,
      // A heartbeat a second at most: the SDK would throttle thousands a second, but each call costs.
      onTag: () => {
        if (Date.now() - beat < 1000) return;
        beat = Date.now();
        ctx.heartbeat();
      },
    });
  };

  return {
    /** One page of the repositories of a registry's catalog that a rule's filter covers. */
    listRepositoryPage: catalogPage,

    /**
     * One drift page of a batch of repositories: compared in order from `from`, until the page holds about
     * `driftPageItems` tags to fix or has compared `driftPageReads` tags. A repository that cannot be read is
     * reported and the page goes on; a transient fault fails the attempt (the retry compares the page again),
     * except on the last attempt, which reports it.
     */
    async diffRepositories(input: DiffRepositoriesInput): Promise<DriftPageResult> {
      const ctx = Context.current();
      const start = input.from ? input.repositories.indexOf(input.from.repository) : 0;
      if (start < 0) throw ApplicationFailure.nonRetryable(`${input.from!.repository} is not in this batch`, 'BadCursor');
      return asTemporalFailure(async () => {
        const result: DriftPageResult = { drifts: [], failed: [] };
        let budget = Math.min(input.limit, driftPageItems);
        let reads = driftPageReads;
        // The next repository's tag lists are read while this one's manifests are (its failure, if any, is its own).
        const prefetch = (i: number) => {
          const lists = i < input.repositories.length ? listsOf({ ...input, repository: input.repositories[i] }) : undefined;
          lists?.catch(() => undefined);
          return lists;
        };
        let upcoming = prefetch(start);
        for (let i = start; i < input.repositories.length; i++) {
          const repository = input.repositories[i];
          if (budget <= 0 || reads <= 0) return { ...result, next: { repository } };
          const lists = upcoming!;
          upcoming = prefetch(i + 1);
          try {
            const after = i === start ? input.from?.after : undefined;
            const { drift, next, read } = await diffOne({ ...input, repository, lists: await lists, after, limit: budget, readLimit: reads });
            result.drifts.push(drift);
            budget -= drift.missing.length + drift.different.length + drift.extra.length;
            reads -= read;
            if (next !== undefined) return { ...result, next: { repository, after: next } };
          } catch (err) {
            if (ctx.cancellationSignal.aborted || (isTransient(err) && !lastAttempt(input.maxAttempts))) throw err;
            result.failed.push({ repository, error: (err as Error).message });
          }
        }
        return result;
      });
    },

    copyImages: createCopyImages(config, clientFor),

    /** Deletes manifests (and with each every tag at its digest) from a target, 4 at a time; gone counts as done. */
    async deleteManifests({ registry, manifests, maxAttempts }: DeleteManifestsInput): Promise<{ failed: { repository: string; digest: string; error: string }[] }> {
      const ctx = Context.current();
      const client = clientFor(registry);
      const failed: { repository: string; digest: string; error: string }[] = [];
      const transient: RegistryError[] = [];
      let i = 0;
      await lanes(
        4,
        () => i < manifests.length,
        async () => {
          const { repository, digest } = manifests[i++];
          try {
            await client.deleteManifest(repository, digest, ctx.cancellationSignal);
          } catch (err) {
            if (ctx.cancellationSignal.aborted) throw err;
            if (isTransient(err)) transient.push(err);
            failed.push({ repository, digest, error: (err as Error).message });
          }
        },
      );
      retryTransient(transient, manifests.length, 'deletes', maxAttempts);
      return { failed };
    },

    /** Deletes a manifest (and with it every tag at that digest) from a target; gone already counts as done. */
    async deleteManifest({ registry, repository, digest }: DeleteManifestInput): Promise<void> {
      return asTemporalFailure(() => clientFor(registry).deleteManifest(repository, digest, Context.current().cancellationSignal));
    },

    /** The whole filtered catalog. Runs begun before the sync-pages patch call it; newer ones page through it. */
    async listRepositories(input: ListRepositoriesInput): Promise<string[]> {
      return (await catalogPage({ ...input, limit: Infinity })).repositories;
    },

    /** One repository's whole drift. Runs begun before the sync-pages patch call it; newer ones diff in pages. */
    async diffRepository(input: DiffRepositoryInput): Promise<RepositoryDrift> {
      return asTemporalFailure(async () => (await diffOne({ ...input, lists: await listsOf(input), limit: Infinity, readLimit: Infinity })).drift);
    },
  };
}
