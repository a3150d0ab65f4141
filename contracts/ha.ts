import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RegistryEndpoint } from './registry-endpoint.ts';
import type { SyncPlan } from './sync.ts';

export interface ProbeResult {
  up: boolean;
  ms: number;
  detail?: string;
}

export interface RpoEntry {
  image: string;
  digest: string;
}

export interface RpoMeasurement {
  /** How the RPO was found: by reading the old primary, or from the endpoint's push log when it cannot be read. */
  source: 'primary' | 'push-log' | 'unknown';
  /** Images the old primary has (or had pushed to it) that the secondary lacks at that digest: the first 100. */
  missing: RpoEntry[];
  /** How many there are in all. */
  total: number;
  /** Why the RPO is unknown, when it is. */
  error?: string;
  /** Tags compared on both sides, when read from the primary. */
  tagsScanned?: number;
  /** The scan stopped at its time bound: `total` counts what it saw until then. */
  partial?: boolean;
}

/** Where a group's endpoint points: what answers through it, and what its configuration says. */
export interface EndpointView {
  /** The registry that answers requests through the endpoint; none when nothing answers. */
  serving?: string;
  /** The registry the endpoint's configuration names (what a reload would serve). */
  configured?: string;
  writesRefused: boolean;
}

export interface HaSide extends RegistryEndpoint {
  kind: 'distribution' | 'harbor';
}

/** An HA group as planning/ha-plan.ts resolves it from berth.yaml. */
export interface HaGroupPlan {
  group: string;
  endpointUrl: string;
  /** The queue of the worker beside the endpoint (switch, verify, push log); plans of berth 0.1 have none: the main queue. */
  endpointTaskQueue?: string;
  primary: HaSide;
  secondary: HaSide;
  probe: { everyMs: number; timeoutMs: number; failures: number };
  /** IDCs whose workers probe; a majority of all of them must see a side down (an unanswered probe abstains). */
  vantagePoints: { idc: string; taskQueue: string }[];
  automaticFailover: boolean;
  /** Failback's resync from the secondary to the recovered primary. */
  resync: SyncPlan;
}

export interface HaEvent {
  kind: 'failover' | 'failback';
  trigger: 'automatic' | 'manual';
  reason: string;
  from: string;
  to: string;
  startedAt: number;
  finishedAt: number;
  /** Failover: from the first probe round that saw the primary down (or the request) to a verified pull. */
  rtoMs: number;
  rpo?: RpoMeasurement;
  fence?: string;
  /** When traffic arrived at the new side (berth 0.2 on). */
  switchedAt?: number;
  /** Which sync rules were fenced off the old primary, or lifted at failback. */
  syncFence?: string;
  verifiedPull?: { image?: string; digest?: string; error?: string };
  workflowId: string;
}

export interface FailoverPlan {
  dryRun: true;
  steps: string[];
  rpo: RpoMeasurement;
}

export interface GuardState {
  active: 'primary' | 'secondary';
  consecutiveDown: number;
  /** When the current streak of failed rounds began. */
  downSince?: number;
  lastRound?: { at: number; votesDown: number; quorum: number; probes: Record<string, Record<string, ProbeResult> | 'no answer'> };
  operation?: 'failover' | 'failback';
  events: HaEvent[];
  /** What the guard last read at the endpoint: it takes the side that answers there as the active one. */
  endpoint?: Partial<EndpointView> & { at: number; error?: string };
  /** Whether berth's sync rules are fenced off the primary (they are while the secondary serves). */
  syncFence?: { fenced: boolean; rules: string[]; at: number; error?: string };
}

export interface GuardInput {
  plan: HaGroupPlan;
  state?: GuardState;
}

export interface FailoverRequest {
  reason: string;
  dryRun?: boolean;
}

export interface FailoverInput extends FailoverRequest {
  plan: HaGroupPlan;
  trigger: 'automatic' | 'manual';
  detectedAt: number;
}

export const guardStateQuery = defineQuery<GuardState & { plan: HaGroupPlan }>('state');
export const failoverUpdate = defineUpdate<HaEvent | FailoverPlan, [FailoverRequest]>('failover');
export const approveFailbackUpdate = defineUpdate<HaEvent, [{ reason: string }]>('approve-failback');
export const reconfigureSignal = defineSignal<[HaGroupPlan]>('reconfigure');
/** From a failover or failback to its guard, the moment traffic arrives at the other side. */
export const endpointSwitchedSignal = defineSignal<[{ active: 'primary' | 'secondary' }]>('endpoint-switched');
