import type { BerthConfig } from '../config/load.ts';
import { createHaActivities } from './ha.ts';
import { registryClients } from './registry/clients.ts';
import { createHostActivities } from './hosts/index.ts';
import { machineContext } from './machine-context.ts';
import { createMachineActivities } from './machines.ts';
import { createReplicationActivities } from './replication.ts';
import { createServiceActivities } from './services/index.ts';
import { createSyncActivities } from './sync/index.ts';

/** Every activity berth registers, built from the worker's config. */
export function createActivities(config: BerthConfig) {
  // One set of registry clients per worker: one token cache and one connection pool per registry.
  const clients = registryClients(config);
  return {
    ...createReplicationActivities(config, clients),
    ...createSyncActivities(config, clients),
    ...createHaActivities(config, clients),
    ...createMachineActivities(config),
    ...createHostActivities(config),
    ...createServiceActivities(machineContext(config)),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { CopyToRegistryInput, CopyToRegistryResult, ResolveImageInput } from './replication.ts';
export type { DeleteManifestInput, DeleteManifestsInput, DiffRepositoriesInput, DiffRepositoryInput, DriftPageResult, ListRepositoriesInput, ListRepositoryPageInput, RepositoryPage } from './sync/index.ts';
export type { CopyImagesInput, CopyImagesResult, ImageToCopy } from './sync/copy-images.ts';
export type { RepositoryDrift } from './sync/drift.ts';
