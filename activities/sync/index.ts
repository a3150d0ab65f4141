import { Context } from '@temporalio/activity';
import type { BerthConfig, SyncFilter } from '../../config/load.ts';
import type { RegistryClients } from '../registry/clients.ts';
import { asTemporalFailure } from '../failures.ts';
import { compareTags, taggedDigests, type RepositoryDrift } from './drift.ts';
import { compileFilter } from './filters.ts';

export interface ListRepositoriesInput {
  registry: string;
  filter: SyncFilter;
  requestsPerSecond?: number;
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

export interface DeleteManifestInput {
  registry: string;
  repository: string;
  digest: string;
}

/** Activities of a scheduled sync: list what a rule covers, compare source and target, delete what is extra. */
export function createSyncActivities(config: BerthConfig, clientFor: RegistryClients) {
  const pageSize = config.sync.pageSize;
  return {
    /** The repositories of a registry's catalog that a rule's filter covers, read page by page. */
    async listRepositories({ registry, filter, requestsPerSecond }: ListRepositoriesInput): Promise<string[]> {
      const ctx = Context.current();
      const keep = compileFilter(filter);
      const found: string[] = [];
      return asTemporalFailure(async () => {
        for await (const page of clientFor(registry, { requestsPerSecond }).listRepositories(pageSize, ctx.cancellationSignal)) {
          found.push(...page.filter(keep));
          ctx.heartbeat(found.length);
        }
        return found;
      });
    },

    /** Tags and digests on both sides of one repository, and how they differ. */
    async diffRepository({ source, target, repository, tags, deleteExtra, requestsPerSecond }: DiffRepositoryInput): Promise<RepositoryDrift> {
      const ctx = Context.current();
      const covered = compileFilter(tags);
      const beat = () => ctx.heartbeat();
      return asTemporalFailure(async () => {
        const [sourceTags, targetTags] = await Promise.all([
          taggedDigests(clientFor(source, { requestsPerSecond }), repository, pageSize, covered, ctx.cancellationSignal, beat),
          taggedDigests(clientFor(target, { requestsPerSecond }), repository, pageSize, deleteExtra ? () => true : covered, ctx.cancellationSignal, beat),
        ]);
        return compareTags(repository, sourceTags, targetTags, covered);
      });
    },

    /** Deletes a manifest (and with it every tag at that digest) from a target; gone already counts as done. */
    async deleteManifest({ registry, repository, digest }: DeleteManifestInput): Promise<void> {
      return asTemporalFailure(() => clientFor(registry).deleteManifest(repository, digest, Context.current().cancellationSignal));
    },
  };
}
