import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, ProbeResult, RpoMeasurement } from '../activities/index.ts';
import { describeFailure, type RegistryEndpoint } from './replicate-image.ts';
import { syncRegistries, type SyncPlan } from './sync-registries.ts';

export interface HaSide extends RegistryEndpoint {
  kind: 'distribution' | 'harbor';
}

/** An HA group as config/ha-plan.ts resolves it from berth.yaml. */
export interface HaGroupPlan {
  group: string;
  endpointUrl: string;
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

const control = { startToCloseTimeout: '1 minute', retry: { initialInterval: '1 second', maximumAttempts: 3 } } as const;
const roundsPerRun = 300;

/**
 * Watches an HA pair for as long as it exists: every round, each vantage point (a worker in its own IDC) probes
 * both registries; the active side counts as down only when a majority of vantage points saw it down, and
 * failover starts only after `failures` such rounds in a row, so neither a flapping registry nor one partitioned
 * vantage point moves traffic. Failback is never automatic: it waits for an approved `approve-failback` update.
 */
export async function registryGuard({ plan: initial, state: carried }: GuardInput): Promise<never> {
  let plan = initial;
  const state: GuardState = carried ?? { active: 'primary', consecutiveDown: 0, events: [] };
  const { workflowId } = workflowInfo();
  let failovers = state.events.length;
  setHandler(guardStateQuery, () => ({ ...state, plan }));
  setHandler(reconfigureSignal, (p) => void (plan = p));

  const busy = () => {
    if (state.operation) throw new Error(`a ${state.operation} of ${plan.group} is already in progress`);
  };
  const run = async <T>(operation: 'failover' | 'failback', fn: () => Promise<T>): Promise<T> => {
    state.operation = operation;
    try {
      return await fn();
    } finally {
      state.operation = undefined;
    }
  };
  const startFailover = (trigger: 'automatic' | 'manual', request: FailoverRequest, detectedAt: number) =>
    run('failover', async () => {
      const result = await executeChild(failover, {
        workflowId: `${workflowId}/failover-${++failovers}`,
        args: [{ ...request, plan, trigger, detectedAt }],
        staticSummary: `${request.dryRun ? 'dry run: ' : ''}fail ${plan.group} over to ${plan.secondary.registry}`,
      }).catch((err) => {
        throw err instanceof ChildWorkflowFailure ? ApplicationFailure.create({ type: 'FailoverFailed', message: describeFailure(err.cause) }) : err;
      });
      if ('kind' in result) {
        state.active = 'secondary';
        record(result);
      }
      return result;
    });
  const record = (event: HaEvent) => {
    state.events = [...state.events, event].slice(-20);
    state.consecutiveDown = 0;
    state.downSince = undefined;
  };

  setHandler(failoverUpdate, (request) => startFailover('manual', request, Date.now()), {
    validator: (request) => {
      busy();
      if (!request.dryRun && state.active === 'secondary') throw new Error(`${plan.group} already serves from ${plan.secondary.registry}: fail back first`);
    },
  });
  setHandler(
    approveFailbackUpdate,
    ({ reason }) =>
      run('failback', async () => {
        const event = await executeChild(failback, {
          workflowId: `${workflowId}/failback-${failovers}`,
          args: [{ plan, reason }],
          staticSummary: `fail ${plan.group} back to ${plan.primary.registry}`,
        }).catch((err) => {
          throw err instanceof ChildWorkflowFailure ? ApplicationFailure.create({ type: 'FailbackFailed', message: describeFailure(err.cause) }) : err;
        });
        state.active = 'primary';
        record(event);
        return event;
      }),
    {
      validator: (_approval) => {
        busy();
        if (state.active === 'primary') throw new Error(`${plan.group} serves from its primary ${plan.primary.registry}: nothing to fail back`);
      },
    },
  );

  for (let round = 0; ; round++) {
    if (round >= roundsPerRun || workflowInfo().continueAsNewSuggested) {
      // A run's history stays bounded; updates in flight finish first.
      await condition(allHandlersFinished);
      await continueAsNew<typeof registryGuard>({ plan, state: { ...state, operation: undefined } });
    }
    const startedAt = Date.now();
    const registries = [plan.primary.registry, plan.secondary.registry];
    const probes = await Promise.all(
      plan.vantagePoints.map(async (v) => {
        const { probeRegistries } = proxyActivities<Activities>({
          taskQueue: v.taskQueue,
          // A vantage point whose worker is down abstains: its probe never starts, and times out here.
          scheduleToCloseTimeout: plan.probe.timeoutMs + Math.min(plan.probe.everyMs, 5000),
          retry: { maximumAttempts: 1 },
          summary: `probe from ${v.idc}`,
        });
        return [v.idc, await probeRegistries({ registries, timeoutMs: plan.probe.timeoutMs }).catch(() => 'no answer' as const)] as const;
      }),
    );
    const active = state.active === 'primary' ? plan.primary.registry : plan.secondary.registry;
    const votesDown = probes.filter(([, p]) => p !== 'no answer' && !p[active].up).length;
    const quorum = Math.floor(plan.vantagePoints.length / 2) + 1;
    state.lastRound = { at: startedAt, votesDown, quorum, probes: Object.fromEntries(probes) };
    if (votesDown >= quorum) {
      state.consecutiveDown++;
      state.downSince ??= startedAt;
    } else {
      state.consecutiveDown = 0;
      state.downSince = undefined;
    }
    // Only the primary fails over by itself; after that, people decide (failback is an approved update).
    if (state.active === 'primary' && plan.automaticFailover && !state.operation && state.consecutiveDown >= plan.probe.failures) {
      const reason = `${active} seen down by ${votesDown} of ${plan.vantagePoints.length} vantage points in ${state.consecutiveDown} consecutive probes`;
      // A failed failover shows in the UI; probing goes on, and another needs a fresh streak of failed rounds.
      await startFailover('automatic', { reason }, state.downSince!).catch(() => {
        state.consecutiveDown = 0;
        state.downSince = undefined;
      });
    }
    await condition(() => false, Math.max(0, plan.probe.everyMs - (Date.now() - startedAt)));
  }
}

/**
 * Moves an HA group's traffic from its primary to its secondary: fence the primary, measure what the secondary
 * lacks (the RPO), switch the endpoint, and prove a pull through it. A dry run measures and plans only.
 */
export async function failover({ plan, reason, dryRun, trigger, detectedAt }: FailoverInput): Promise<HaEvent | FailoverPlan> {
  const startedAt = Date.now();
  const { fenceRegistry, switchEndpoint, verifyEndpointPull } = proxyActivities<Activities>(control);
  // Reading a large registry takes a while; the RPO informs the failover but must never block it.
  const { measureRpo } = proxyActivities<Activities>({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '30 seconds', retry: { initialInterval: '1 second', maximumAttempts: 2 } });
  const { primary, secondary } = plan;
  const rpoOf = () =>
    measureRpo({ group: plan.group, primary: primary.registry, secondary: secondary.registry, timeoutMs: plan.probe.timeoutMs }).catch(
      (err): RpoMeasurement => ({ source: 'unknown', missing: [], total: 0, error: describeFailure(err) }),
    );
  const fenceStep = primary.kind === 'harbor' ? `put ${primary.registry} (Harbor) in read-only mode` : `fence ${primary.registry} by taking it out of the endpoint`;
  if (dryRun) {
    const rpo = await rpoOf();
    return { dryRun: true, steps: [fenceStep, `measure the RPO`, `switch ${plan.endpointUrl} to ${secondary.registry}`, `verify a pull through ${plan.endpointUrl}`], rpo };
  }
  // The old primary may be unreachable: a fence that cannot be applied is recorded, not waited on.
  let fenced = false;
  const fence = await fenceRegistry({ registry: primary.registry, readOnly: true }).then(
    (f) => ((fenced = f.fenced), f.how),
    (err) => `not fenced: ${describeFailure(err)}`,
  );
  const rpo = await rpoOf();
  try {
    await switchEndpoint({ group: plan.group, to: secondary.registry });
  } catch (err) {
    // Traffic still goes to the old primary: it must not stay read-only.
    if (fenced) await CancellationScope.nonCancellable(() => fenceRegistry({ registry: primary.registry, readOnly: false }));
    throw err;
  }
  // Once the switch is done, traffic is on the secondary whatever the check says: the event records a failed check.
  const verifiedPull = await verifyEndpointPull({ group: plan.group, registry: secondary.registry }).catch((err) => ({ error: describeFailure(err) }));
  const finishedAt = Date.now();
  return { kind: 'failover', trigger, reason, from: primary.registry, to: secondary.registry, startedAt, finishedAt, rtoMs: finishedAt - detectedAt, rpo, fence, verifiedPull, workflowId: workflowInfo().workflowId };
}

/**
 * Brings traffic back to the recovered primary, once approved: lift its fence, resync it from the secondary
 * (verified by digest, nothing may fail), switch the endpoint back, and prove a pull.
 */
export async function failback({ plan, reason }: { plan: HaGroupPlan; reason: string }): Promise<HaEvent> {
  const startedAt = Date.now();
  const { probeRegistries, fenceRegistry, switchEndpoint, verifyEndpointPull } = proxyActivities<Activities>(control);
  const { primary, secondary } = plan;
  const probe = await probeRegistries({ registries: [primary.registry], timeoutMs: plan.probe.timeoutMs });
  if (!probe[primary.registry].up) {
    throw ApplicationFailure.create({ type: 'PrimaryDown', message: `${primary.registry} is still down (${probe[primary.registry].detail}): nothing changed`, nonRetryable: true });
  }
  // The resync writes to the old primary: a read-only Harbor would refuse it. Clients still reach the secondary.
  const fence = (await fenceRegistry({ registry: primary.registry, readOnly: false })).how;
  const report = await executeChild(syncRegistries, { workflowId: `${workflowInfo().workflowId}/resync`, args: [plan.resync], staticSummary: `resync ${secondary.registry} -> ${primary.registry}` });
  const fixed = report.pairs.reduce((n, p) => n + p.counts.fixed, 0);
  await switchEndpoint({ group: plan.group, to: primary.registry });
  const verifiedPull = await verifyEndpointPull({ group: plan.group, registry: primary.registry });
  const finishedAt = Date.now();
  return {
    kind: 'failback',
    trigger: 'manual',
    reason: `${reason} (resync fixed ${fixed} images)`,
    from: secondary.registry,
    to: primary.registry,
    startedAt,
    finishedAt,
    rtoMs: finishedAt - startedAt,
    fence,
    verifiedPull,
    workflowId: workflowInfo().workflowId,
  };
}

