import type { BerthConfig } from '../config/load.ts';
import { createHaActivities } from './ha.ts';
import { registryAdapters } from './registry/adapters/index.ts';
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
  // One adapter per registry, on those clients: what differs by kind (health, fence, replication) is asked of it.
  const registries = registryAdapters(config, clients);
  return {
    ...createReplicationActivities(config, registries),
    ...createSyncActivities(config, clients),
    ...createHaActivities(config, registries),
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
