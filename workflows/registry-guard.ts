import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { activityOptions, activityTiming } from '../contracts/activity-timing.ts';
import {
  approveFailbackUpdate,
  endpointSwitchedSignal,
  failoverUpdate,
  guardStateQuery,
  reconfigureSignal,
  type FailoverInput,
  type FailoverPlan,
  type FailoverRequest,
  type GuardInput,
  type GuardState,
  type HaEvent,
  type HaGroupPlan,
  type HaSide,
  type RpoMeasurement,
} from '../contracts/ha.ts';
import type { SyncReport } from '../contracts/sync.ts';
import { describeFailure } from './failures.ts';
import { guardPolicy, type GuardObservation } from './guard-policy.ts';
import { syncRegistries } from './sync-registries.ts';

const failoverStep = activityOptions(activityTiming.failoverStep);
const roundsPerRun = 300;
/** The guard re-reads the endpoint and re-asserts the sync rules' fence (on or off) this often. */
const followEveryRounds = 30;

// Changes that alter commands, for runs and histories recorded before them (test/histories/0.1.0/).
/** The guard takes the side the endpoint serves as its state, and keeps sync rules off a fenced primary. */
const followsEndpoint = 'guard-follows-endpoint';
/** Failover: fence -> switch -> verify -> measure the RPO (was: fence -> RPO -> switch -> verify). */
const switchBeforeRpo = 'failover-switch-before-rpo';
/** Failback: resync, fence the secondary, catch up what was pushed meanwhile, switch (was: resync, switch). */
const fencedCatchUp = 'failback-fenced-catch-up';

/** The endpoint's activities, on the queue of the worker beside it. */
const atEndpoint = (plan: HaGroupPlan) => proxyActivities<Activities>(activityOptions(activityTiming.failoverStep, { taskQueue: plan.endpointTaskQueue }));

/** Tells the guard that started this failover or failback where traffic goes now: its state follows at once. */
async function tellGuard(active: 'primary' | 'secondary'): Promise<void> {
  const parent = workflowInfo().parent;
  if (parent)
    await getExternalWorkflowHandle(parent.workflowId)
      .signal(endpointSwitchedSignal, { active })
      .catch(() => undefined);
}

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
  // Runs started before berth 0.2 follow nothing: they continue as new on the new code once upgraded.
  const follows = patched(followsEndpoint);
  let mustFollow = follows;
  let following: Promise<void> | undefined;
  let operations = 0;
  setHandler(guardStateQuery, () => ({ ...state, plan }));
  setHandler(reconfigureSignal, (p) => {
    plan = p;
    // berth's start rewrites the sync schedules from berth.yaml: the fence goes back on at the next round.
    mustFollow = follows;
  });
  setHandler(endpointSwitchedSignal, ({ active }) => void (state.active = active));

  /**
   * Reads where the endpoint points and takes that side as the active one (the guard survives its own loss, and
   * never believes other than what nginx serves), then keeps the sync rules' fence in line with it.
   */
  const followEndpoint = async () => {
    const started = operations;
    // The endpoint's worker may be down: the guard goes on with what it knew, and tries again later.
    const { readEndpoint } = proxyActivities<Activities>(activityOptions(activityTiming.readEndpoint, { taskQueue: plan.endpointTaskQueue }));
    const { fenceSyncRules } = proxyActivities<Activities>(failoverStep);
    const view = await readEndpoint({ group: plan.group }).catch((err) => ({ error: describeFailure(err) }));
    // An operation that began meanwhile moves the endpoint itself and says where it went.
    if (operations !== started || state.operation) return;
    state.endpoint = { ...view, at: Date.now() };
    const side = 'error' in view ? undefined : (view.serving ?? view.configured);
    if (side !== plan.primary.registry && side !== plan.secondary.registry) {
      // Not known where traffic goes: the fence stays as it is, and the next round reads again.
      mustFollow = true;
      return;
    }
    state.active = side === plan.primary.registry ? 'primary' : 'secondary';
    const fenced = state.active === 'secondary';
    state.syncFence = await fenceSyncRules({ group: plan.group, fenced }).then(
      ({ rules }) => ({ fenced, rules, at: Date.now() }),
      // The fence stays as it was, and the next round tries again.
      (err) => ((mustFollow = true), { fenced: state.syncFence?.fenced ?? false, rules: state.syncFence?.rules ?? [], at: Date.now(), error: describeFailure(err) }),
    );
  };

  const busy = () => {
    if (state.operation) throw new Error(`a ${state.operation} of ${plan.group} is already in progress`);
  };
  const run = async <T>(operation: 'failover' | 'failback', fn: () => Promise<T>): Promise<T> => {
    state.operation = operation;
    operations++;
    try {
      return await fn();
    } finally {
      state.operation = undefined;
      // Whatever the operation did or failed to do, the state is what the endpoint serves.
      if (follows) await followEndpoint();
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
  /** Applies the policy to what the guard saw; what it decides is the caller's to carry out. */
  const observe = (observation: GuardObservation) => {
    const judged = guardPolicy(plan, state, observation);
    Object.assign(state, judged.state);
    return judged.decision;
  };
  const record = (event: HaEvent) => {
    state.events = [...state.events, event].slice(-20);
    observe({ kind: 'operation-completed' });
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
    if (round >= roundsPerRun || workflowInfo().continueAsNewSuggested || (!follows && patched(followsEndpoint))) {
      // A run's history stays bounded; updates in flight finish first.
      await condition(allHandlersFinished);
      await continueAsNew<typeof registryGuard>({ plan, state: { ...state, operation: undefined } });
    }
    // Beside the probes, never holding them up: the endpoint's worker may be down for a while.
    if (follows && !state.operation && !following && (mustFollow || round % followEveryRounds === 0)) {
      mustFollow = false;
      following = followEndpoint().finally(() => (following = undefined));
    }
    const startedAt = Date.now();
    const registries = [plan.primary.registry, plan.secondary.registry];
    const probes = await Promise.all(
      plan.vantagePoints.map(async (v) => {
        const { probeRegistries } = proxyActivities<Activities>(
          activityOptions(activityTiming.guardProbe, {
            taskQueue: v.taskQueue,
            // A vantage point whose worker is down abstains: its probe never starts, and times out here.
            scheduleToCloseTimeout: plan.probe.timeoutMs + Math.min(plan.probe.everyMs, 5000),
            summary: `probe from ${v.idc}`,
          }),
        );
        return [v.idc, await probeRegistries({ registries, timeoutMs: plan.probe.timeoutMs }).catch(() => 'no answer' as const)] as const;
      }),
    );
    const decision = observe({ kind: 'round', at: startedAt, probes: Object.fromEntries(probes), active: state.active, busy: state.operation !== undefined });
    if (decision.kind === 'failover') {
      // A failed failover shows in the UI; probing goes on (guard-policy.ts says when to try again).
      await startFailover('automatic', { reason: decision.reason }, decision.detectedAt).catch(() => observe({ kind: 'failover-failed' }));
    }
    await condition(() => false, Math.max(0, plan.probe.everyMs - (Date.now() - startedAt)));
  }
}

/** The RPO measurement of a failover, on the given queue; a failure makes it unknown, never the failover's. */
function rpoMeasurer(plan: HaGroupPlan, taskQueue?: string) {
  const { measureRpo } = proxyActivities<Activities>(activityOptions(activityTiming.measureRpo, { taskQueue }));
  return () =>
    measureRpo({ group: plan.group, primary: plan.primary.registry, secondary: plan.secondary.registry, timeoutMs: plan.probe.timeoutMs }).catch((err): RpoMeasurement => ({
      source: 'unknown',
      missing: [],
      total: 0,
      error: describeFailure(err),
    }));
}

/** Whether a side has a fence of its own; a plan of berth 0.1/0.2 says only its kind, and Harbor was the one that had. */
const fencesItself = (side: HaSide) => side.readOnlyFence ?? side.kind === 'harbor';

const fenceStep = ({ primary }: HaGroupPlan) => (fencesItself(primary) ? `put ${primary.registry} (${primary.kind}) in read-only mode` : `fence ${primary.registry} by taking it out of the endpoint`);

/**
 * Moves an HA group's traffic from its primary to its secondary: fence the primary (and berth's sync rules off
 * it), switch the endpoint, prove a pull through it, and then measure what the secondary lacks (the RPO): the
 * fence makes it exact, and reading a large registry never delays the switch. A dry run measures and plans only.
 */
export async function failover(input: FailoverInput): Promise<HaEvent | FailoverPlan> {
  if (!patched(switchBeforeRpo)) return failoverRpoFirst(input);
  const { plan, reason, dryRun, trigger, detectedAt } = input;
  const startedAt = Date.now();
  const { fenceSyncRules } = proxyActivities<Activities>(failoverStep);
  const { fenceRegistry } = proxyActivities<Activities>(activityOptions(activityTiming.fenceRegistry));
  const { switchEndpoint, verifyEndpointPull } = atEndpoint(plan);
  const rpoOf = rpoMeasurer(plan, plan.endpointTaskQueue);
  const { group, primary, secondary } = plan;
  if (dryRun) {
    const steps = [fenceStep(plan), `fence berth's sync rules off ${primary.registry}`, `switch ${plan.endpointUrl} to ${secondary.registry}`, `verify a pull through ${plan.endpointUrl}`, `measure the RPO`];
    return { dryRun: true, steps, rpo: await rpoOf() };
  }
  let fenced = false;
  const fence = await fenceRegistry({ registry: primary.registry, readOnly: true }).then(
    (f) => ((fenced = f.fenced), f.how),
    (err) => `not fenced: ${describeFailure(err)}`,
  );
  const syncFence = await fenceSyncRules({ group, fenced: true }).then(
    ({ rules }) => `sync rules kept off ${primary.registry}: ${rules.join(', ') || 'none wrote to it'}`,
    (err) => `sync rules not fenced: ${describeFailure(err)}`,
  );
  try {
    await switchEndpoint({ group, to: secondary.registry });
  } catch (err) {
    // Traffic still goes to the old primary: it must not stay fenced.
    await CancellationScope.nonCancellable(async () => {
      if (fenced) await fenceRegistry({ registry: primary.registry, readOnly: false });
      await fenceSyncRules({ group, fenced: false });
    });
    throw err;
  }
  const switchedAt = Date.now();
  await tellGuard('secondary');
  // Once the switch is done, traffic is on the secondary whatever the check says: the event records a failed check.
  const verifiedPull = await verifyEndpointPull({ group, registry: secondary.registry }).catch((err) => ({ error: describeFailure(err) }));
  const rtoMs = Date.now() - detectedAt;
  const rpo = await rpoOf();
  return { kind: 'failover', trigger, reason, from: primary.registry, to: secondary.registry, startedAt, switchedAt, finishedAt: Date.now(), rtoMs, rpo, fence, syncFence, verifiedPull, workflowId: workflowInfo().workflowId };
}

/** berth 0.1's failover (fence -> RPO -> switch -> verify), for the runs and histories recorded before 0.2. */
async function failoverRpoFirst({ plan, reason, dryRun, trigger, detectedAt }: FailoverInput): Promise<HaEvent | FailoverPlan> {
  const startedAt = Date.now();
  const { fenceRegistry, switchEndpoint, verifyEndpointPull } = proxyActivities<Activities>(failoverStep);
  const rpoOf = rpoMeasurer(plan);
  const { primary, secondary } = plan;
  if (dryRun) {
    const rpo = await rpoOf();
    return { dryRun: true, steps: [fenceStep(plan), `measure the RPO`, `switch ${plan.endpointUrl} to ${secondary.registry}`, `verify a pull through ${plan.endpointUrl}`], rpo };
  }
  let fenced = false;
  const fence = await fenceRegistry({ registry: primary.registry, readOnly: true }).then(
    (f) => ((fenced = f.fenced), f.how),
    (err) => `not fenced: ${describeFailure(err)}`,
  );
  const rpo = await rpoOf();
  try {
    await switchEndpoint({ group: plan.group, to: secondary.registry });
  } catch (err) {
    if (fenced) await CancellationScope.nonCancellable(() => fenceRegistry({ registry: primary.registry, readOnly: false }));
    throw err;
  }
  const verifiedPull = await verifyEndpointPull({ group: plan.group, registry: secondary.registry }).catch((err) => ({ error: describeFailure(err) }));
  const finishedAt = Date.now();
  return { kind: 'failover', trigger, reason, from: primary.registry, to: secondary.registry, startedAt, finishedAt, rtoMs: finishedAt - detectedAt, rpo, fence, verifiedPull, workflowId: workflowInfo().workflowId };
}

/**
 * Brings traffic back to the recovered primary, once approved: lift its fence, resync it from the secondary while
 * the secondary still serves, then fence the secondary (writes through the endpoint refused, a Harbor read-only),
 * catch up what was pushed meanwhile, switch back, lift the fences, and prove a pull. Nothing pushed during the
 * failback is left behind on the secondary: a push is either caught up or refused (and retried by the client).
 */
export async function failback(input: { plan: HaGroupPlan; reason: string }): Promise<HaEvent> {
  if (!patched(fencedCatchUp)) return failbackUnfenced(input);
  const { plan, reason } = input;
  const startedAt = Date.now();
  const { workflowId } = workflowInfo();
  const { probeRegistries, fenceRegistry, fenceSyncRules } = proxyActivities<Activities>(failoverStep);
  const { switchEndpoint, verifyEndpointPull, pushedRepositories } = atEndpoint(plan);
  const { group, primary, secondary } = plan;
  await primaryUp(plan, probeRegistries);
  // The resync writes to the old primary: a read-only Harbor would refuse it. Clients still reach the secondary.
  const fence = (await fenceRegistry({ registry: primary.registry, readOnly: false })).how;
  const resync = await executeChild(syncRegistries, { workflowId: `${workflowId}/resync`, args: [plan.resync], staticSummary: `resync ${secondary.registry} -> ${primary.registry}` });
  await switchEndpoint({ group, to: secondary.registry, writesRefused: true });
  let readOnly = false;
  let caughtUp = 0;
  try {
    if (fencesItself(secondary)) readOnly = (await fenceRegistry({ registry: secondary.registry, readOnly: true })).fenced;
    // Only what was pushed through the endpoint since the failback began (a minute's margin for two hosts' clocks);
    // without a push log, everything again.
    const pushed = await pushedRepositories({ group, sinceMs: startedAt - 60_000 });
    if (pushed === null || pushed.length > 0) {
      const catchUp = pushed ? { ...plan.resync, repositories: { include: pushed, exclude: plan.resync.repositories.exclude } } : plan.resync;
      const report = await executeChild(syncRegistries, { workflowId: `${workflowId}/catch-up`, args: [catchUp], staticSummary: `catch up ${secondary.registry} -> ${primary.registry}, writes refused` });
      caughtUp = fixedIn(report);
    }
    await switchEndpoint({ group, to: primary.registry });
  } catch (err) {
    // Traffic stays on the secondary: it takes writes again.
    await CancellationScope.nonCancellable(async () => {
      await switchEndpoint({ group, to: secondary.registry });
      if (readOnly) await fenceRegistry({ registry: secondary.registry, readOnly: false });
    });
    throw err;
  }
  const switchedAt = Date.now();
  await tellGuard('primary');
  if (readOnly) await fenceRegistry({ registry: secondary.registry, readOnly: false });
  // Traffic is back on the primary whatever follows: failures are recorded (and the guard lifts the fence again).
  const syncFence = await fenceSyncRules({ group, fenced: false }).then(
    ({ rules }) => `sync rules write to ${primary.registry} again: ${rules.join(', ') || 'none'}`,
    (err) => `sync rules still fenced: ${describeFailure(err)}`,
  );
  const verifiedPull = await verifyEndpointPull({ group, registry: primary.registry }).catch((err) => ({ error: describeFailure(err) }));
  const finishedAt = Date.now();
  return {
    kind: 'failback',
    trigger: 'manual',
    reason: `${reason} (resync fixed ${fixedIn(resync)} images, the catch-up with writes refused ${caughtUp})`,
    from: secondary.registry,
    to: primary.registry,
    startedAt,
    switchedAt,
    finishedAt,
    rtoMs: finishedAt - startedAt,
    fence,
    syncFence,
    verifiedPull,
    workflowId,
  };
}

const fixedIn = (report: SyncReport) => report.pairs.reduce((n, p) => n + p.counts.fixed, 0);

/** Failback starts only when the old primary answers; otherwise nothing changes. */
async function primaryUp({ primary, probe }: HaGroupPlan, probeRegistries: Activities['probeRegistries']): Promise<void> {
  const result = await probeRegistries({ registries: [primary.registry], timeoutMs: probe.timeoutMs });
  if (!result[primary.registry].up) {
    throw ApplicationFailure.create({ type: 'PrimaryDown', message: `${primary.registry} is still down (${result[primary.registry].detail}): nothing changed`, nonRetryable: true });
  }
}

/** berth 0.1's failback (resync, then switch), for the runs and histories recorded before 0.2. */
async function failbackUnfenced({ plan, reason }: { plan: HaGroupPlan; reason: string }): Promise<HaEvent> {
  const startedAt = Date.now();
  const { probeRegistries, fenceRegistry, switchEndpoint, verifyEndpointPull } = proxyActivities<Activities>(failoverStep);
  const { primary, secondary } = plan;
  await primaryUp(plan, probeRegistries);
  const fence = (await fenceRegistry({ registry: primary.registry, readOnly: false })).how;
  const report = await executeChild(syncRegistries, { workflowId: `${workflowInfo().workflowId}/resync`, args: [plan.resync], staticSummary: `resync ${secondary.registry} -> ${primary.registry}` });
  await switchEndpoint({ group: plan.group, to: primary.registry });
  const verifiedPull = await verifyEndpointPull({ group: plan.group, registry: primary.registry });
  const finishedAt = Date.now();
  return {
    kind: 'failback',
    trigger: 'manual',
    reason: `${reason} (resync fixed ${fixedIn(report)} images)`,
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
