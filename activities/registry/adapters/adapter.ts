import type { Credentials } from '../auth.ts';
import type { RegistryClient } from '../client.ts';
import type { ClientLimits } from '../clients.ts';
import type { RegistryKind } from './kind.ts';

/** A registry of the worker's berth.yaml with its login resolved: what an adapter is built from. */
export interface RegistryLogin {
  name: string;
  url: string;
  kind: RegistryKind;
  credentials?: Credentials;
}

/** Whether a registry serves images, in its own terms (a Harbor whose portal is down still does). */
export interface RegistryHealth {
  up: boolean;
  detail?: string;
}

export interface RegistryFence {
  /** Whether the registry itself now refuses writes. */
  fenced: boolean;
  /** What was done, for the HA event. */
  how: string;
}

export interface NativeReplicationInput {
  target: RegistryAdapter;
  repository: string;
  tag: string;
  /** How long the registry's own replication may run; past that, berth stops it and fails. */
  deadlineMs: number;
  signal?: AbortSignal;
  /** Each state of the replication berth reads (about once a second): the activity heartbeats there. */
  onProgress?: (status: string) => void;
}

export interface NativeReplicationResult {
  /** What the target resolves the tag to, checked to be the source's. */
  digest: string;
}

/**
 * One registry as its kind serves it (Harbor's src/pkg/reg/adapter/<kind> is the model): the OCI client every
 * kind shares, and what differs by kind — health, fence, a replication of its own. Activities ask the adapter,
 * never the kind; one adapter per registry and worker (activities/registry/adapters/index.ts).
 */
export interface RegistryAdapter {
  readonly login: RegistryLogin;
  /** The registry's OCI distribution client, shared by the worker (one token cache and connection pool). */
  client(limits?: ClientLimits): RegistryClient;
  /** Throws when the registry cannot be asked at all (no answer, a refused login). */
  health(signal: AbortSignal): Promise<RegistryHealth>;
  /** Turns the registry's own fence on or off; a kind without one says how it is fenced instead. */
  fence(readOnly: boolean, signal: AbortSignal): Promise<RegistryFence>;
  /** Copies one tag to another registry with the registry's own replication, verified; only kinds that replicate. */
  replicate?(input: NativeReplicationInput): Promise<NativeReplicationResult>;
}

/** Builds a kind's adapter for one registry; `client` gives the worker's shared OCI clients of that registry. */
export type AdapterFactory = (login: RegistryLogin, client: (limits?: ClientLimits) => RegistryClient) => RegistryAdapter;
