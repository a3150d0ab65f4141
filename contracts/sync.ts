import { defineQuery } from '@temporalio/workflow';
import type { RegistryEndpoint } from './registry-endpoint.ts';

/** Where a drift page starts: at a repository of the batch, after one of its tags when the page before ended there. */
export interface DriftCursor {
  repository: string;
  after?: string;
}

export interface SyncFilter {
  include: string[];
  exclude: string[];
}

export interface SyncPair {
  from: RegistryEndpoint;
  to: RegistryEndpoint;
  /** Pairs of a level run after every pair of the level before: a sub-IDC syncs from an IDC already synced. */
  level: number;
  /** Fix drift with the source Harbor's own replication (a rule in mode harbor, for pairs whose source is a Harbor). */
  viaHarbor?: boolean;
}

export interface SyncPlan {
  rule: string;
  pairs: SyncPair[];
  repositories: SyncFilter;
  tags: SyncFilter;
  /** mode harbor: how long one Harbor execution may run before berth stops it. */
  harborDeadlineMs: number;
  deleteExtra: boolean;
  requestsPerSecond?: number;
  bytesPerSecond?: number;
  maxAttempts: number;
  /** Repositories per child workflow of a sync, and per page of the catalog. */
  repositoriesPerBatch: number;
  /** A run, and each batch, continues as new past this many history events (plans made before it: 5,000). */
  eventsPerRun?: number;
}

export type Counted = 'missing' | 'different' | 'extra' | 'fixed' | 'deleted';

/** The drift report of one source -> target pair: what was wrong, what was fixed, what failed. */
export interface PairReport {
  from: string;
  to: string;
  repositories: number;
  counts: Record<Counted | 'inSync' | 'failed', number>;
  /** Images as `repository:tag`; each list keeps its first 100 entries, `counts` has the totals. */
  missing: string[];
  different: string[];
  extra: string[];
  fixed: string[];
  deleted: string[];
  failed: { image: string; error: string }[];
}

export interface SyncReport {
  rule: string;
  pairs: PairReport[];
}

export interface SyncRepositoriesInput {
  plan: SyncPlan;
  pair: SyncPair;
  repositories: string[];
  /** A batch that continued as new: the drift page it goes on from and its report so far. */
  resume?: { from: DriftCursor; report: PairReport };
}

export type PairStatus = 'pending' | 'syncing' | 'done';

/** How far a run got, pair by pair (in the plan's order): what a run that continues as new starts from. */
export interface SyncRunState {
  reports: PairReport[];
  pairs: { status: PairStatus; batches: number; batchesDone: number; after?: string }[];
}

export const syncProgressQuery = defineQuery<Record<string, { status: PairStatus; batchesDone: number; batches: number }>>('progress');
