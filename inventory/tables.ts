import type { Generated } from 'kysely';

/**
 * The inventory's tables as Kysely sees them. Times are epoch milliseconds (`bigint` columns): the same
 * arithmetic then works on SQLite and PostgreSQL, where date functions differ. A migration that adds a table adds
 * its interface here.
 */
export interface InventoryTables {
  machines: MachinesTable;
  machine_events: MachineEventsTable;
  pools: PoolsTable;
  allocations: AllocationsTable;
  installation: InstallationTable;
  service_releases: ServiceReleasesTable;
  service_machines: ServiceMachinesTable;
}

export const machineStates = ['requested', 'creating', 'running', 'initializing', 'ready', 'decommissioning', 'destroying', 'destroyed', 'failed'] as const;
export type MachineState = (typeof machineStates)[number];

export interface MachinesTable {
  /** Chosen by the caller (the provisioning workflow), so that recording the same machine twice is a no-op. */
  id: string;
  cluster: string;
  pool: string;
  /** The provider kind: docker, static, aws. */
  provider: string;
  /** The provider's own id (container id, instance id, static host name), once created. */
  provider_id: string | null;
  name: string;
  address: string | null;
  ssh_port: number | null;
  state: MachineState;
  /** Pinned on the first SSH contact, checked on every later one. */
  host_key_fingerprint: string | null;
  instance_type: string;
  hourly_price: number;
  created_at: number;
  ready_at: number | null;
  /** The end of the machine's lifetime, and of its cost. */
  destroyed_at: number | null;
  failure_reason: string | null;
}

export interface MachineEventsTable {
  id: Generated<number>;
  machine_id: string;
  at: number;
  kind: string;
  detail: string | null;
}

export interface PoolsTable {
  cluster: string;
  name: string;
  /** The size the pool was last scaled to. */
  desired: number;
  updated_at: number;
}

/**
 * Slots of a finite pool held by a key (static hosts of a cluster): the primary key makes two holders of one slot
 * impossible, whichever process asks.
 */
export interface AllocationsTable {
  scope: string;
  slot: string;
  holder_key: string;
  /** JSON object: what the holder attached to the slot (a static host's tags). */
  labels: string;
  allocated_at: number;
}

/** This inventory's one row: the installation id every machine it makes is tagged with. */
export interface InstallationTable {
  id: string;
  created_at: number;
}

export const releaseOutcomes = ['running', 'succeeded', 'rolled-back', 'failed'] as const;
export type ReleaseOutcome = (typeof releaseOutcomes)[number];

/** One deploy of a service: what, by whom, when, and how it ended. */
export interface ServiceReleasesTable {
  id: Generated<number>;
  service: string;
  version: string;
  /** The image's digest in the cluster IDC's registry, once resolved. */
  digest: string | null;
  requested_by: string;
  /** deploy or rollback */
  reason: string;
  workflow_id: string;
  run_id: string;
  started_at: number;
  finished_at: number | null;
  outcome: ReleaseOutcome;
  detail: string | null;
}

/** What a service runs on one machine, as its last deploy (or drain) left it. */
export interface ServiceMachinesTable {
  service: string;
  machine_id: string;
  version: string | null;
  digest: string | null;
  /** JSON array of ServiceContainer (contracts/services.ts). */
  containers: string;
  health: 'healthy' | 'unhealthy' | 'drained';
  detail: string | null;
  updated_at: number;
}

/** A time column as the query layer hands it out: ISO 8601, the same in an API answer and an activity result. */
export function isoTime(ms: number | string | null): string | null {
  // PostgreSQL's driver reads bigint as a string; SQLite's as a number.
  return ms === null ? null : new Date(Number(ms)).toISOString();
}
