import type { BerthConfig } from '../config/load.ts';
import { createReplicationActivities } from './replication.ts';

/** Every activity berth registers, built from the worker's config. */
export function createActivities(config: BerthConfig) {
  return { ...createReplicationActivities(config) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { CopyToRegistryInput, CopyToRegistryResult, ResolveImageInput } from './replication.ts';
