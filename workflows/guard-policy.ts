import type { GuardState, HaGroupPlan, RoundProbes } from '../contracts/ha.ts';

/** What the policy keeps of the guard's state: the streak of rounds that saw the active side down. */
export type GuardPolicyState = Pick<GuardState, 'consecutiveDown' | 'downSince' | 'lastRound'>;

/** The facts of the HA group the policy judges by. */
export type GuardPolicyPlan = Pick<HaGroupPlan, 'primary' | 'secondary' | 'vantagePoints' | 'probe' | 'automaticFailover'>;

/** What the guard saw happen. */
export type GuardObservation =
  /** A round of probes ended; `busy`: a failover or failback is running. */
  | { kind: 'round'; at: number; probes: RoundProbes; active: GuardState['active']; busy: boolean }
  /** An automatic failover failed: another needs a fresh streak of failed rounds. */
  | { kind: 'failover-failed' }
  /** A failover or failback completed: traffic moved, the streak is over. */
  | { kind: 'operation-completed' };

export type GuardDecision = { kind: 'watch' } | { kind: 'failover'; reason: string; detectedAt: number };

const watch: GuardDecision = { kind: 'watch' };

/**
 * The guard's policy, apart from its probing: the active side counts as down in a round only when a majority of
 * all vantage points saw it down (a vantage point that did not answer abstains, and so counts against a failover),
 * and failover starts after `failures` such rounds in a row, only from the primary, only when automatic failover
 * is on and no operation runs. Failback is never automatic.
 */
export function guardPolicy(plan: GuardPolicyPlan, state: GuardPolicyState, observation: GuardObservation): { state: GuardPolicyState; decision: GuardDecision } {
  if (observation.kind !== 'round') return { state: { consecutiveDown: 0, downSince: undefined, lastRound: state.lastRound }, decision: watch };
  const { at, probes, active, busy } = observation;
  const registry = active === 'primary' ? plan.primary.registry : plan.secondary.registry;
  const votesDown = Object.values(probes).filter((p) => p !== 'no answer' && !p[registry].up).length;
  const quorum = Math.floor(plan.vantagePoints.length / 2) + 1;
  const down = votesDown >= quorum;
  const next: GuardPolicyState = {
    consecutiveDown: down ? state.consecutiveDown + 1 : 0,
    downSince: down ? (state.downSince ?? at) : undefined,
    lastRound: { at, votesDown, quorum, probes },
  };
  if (active !== 'primary' || !plan.automaticFailover || busy || next.consecutiveDown < plan.probe.failures) return { state: next, decision: watch };
  const reason = `${registry} seen down by ${votesDown} of ${plan.vantagePoints.length} vantage points in ${next.consecutiveDown} consecutive probes`;
  return { state: next, decision: { kind: 'failover', reason, detectedAt: next.downSince! } };
}
