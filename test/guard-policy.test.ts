// The HA guard's policy (workflows/guard-policy.ts) as a table: what a round of probes, a failed failover or a
// finished operation does to the streak, and when the guard fails over. Pure: no Temporal, no registries.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { guardPolicy, type GuardObservation, type GuardPolicyPlan, type GuardPolicyState } from '../workflows/guard-policy.ts';
import type { RoundProbes } from '../contracts/ha.ts';

const side = (registry: string, idc: string) => ({ registry, idc, taskQueue: `berth-${idc}`, kind: 'distribution' });
const planOf = (vantagePoints: number, opts: { failures?: number; automaticFailover?: boolean } = {}): GuardPolicyPlan => ({
  primary: side('reg-a', 'idc-a'),
  secondary: side('reg-b', 'idc-b'),
  vantagePoints: Array.from({ length: vantagePoints }, (_, i) => ({ idc: `v${i}`, taskQueue: `berth-v${i}` })),
  probe: { everyMs: 1000, timeoutMs: 500, failures: opts.failures ?? 3 },
  automaticFailover: opts.automaticFailover ?? true,
});

/** One round: per vantage point, which side it saw down ('a', 'b', 'both', 'none') or that it did not answer. */
const round = (at: number, seen: ('a' | 'b' | 'both' | 'none' | 'abstain')[], opts: { active?: 'primary' | 'secondary'; busy?: boolean } = {}): GuardObservation => ({
  kind: 'round',
  at,
  active: opts.active ?? 'primary',
  busy: opts.busy ?? false,
  probes: Object.fromEntries(seen.map((s, i) => [`v${i}`, s === 'abstain' ? 'no answer' : { 'reg-a': { up: s !== 'a' && s !== 'both', ms: 5 }, 'reg-b': { up: s !== 'b' && s !== 'both', ms: 5 } }])),
});

const fresh: GuardPolicyState = { consecutiveDown: 0 };
const streak = (consecutiveDown: number, downSince: number): GuardPolicyState => ({ consecutiveDown, downSince });

describe('one round of probes', () => {
  const cases: { name: string; plan: GuardPolicyPlan; state: GuardPolicyState; observation: GuardObservation; votesDown: number; quorum: number; after: [number, number | undefined]; failover?: string }[] = [
    { name: 'a majority sees the primary down: the streak begins at this round', plan: planOf(3), state: fresh, observation: round(100, ['a', 'a', 'none']), votesDown: 2, quorum: 2, after: [1, 100] },
    { name: 'one vantage point of three is no majority: the streak is broken', plan: planOf(3), state: streak(2, 50), observation: round(100, ['a', 'none', 'none']), votesDown: 1, quorum: 2, after: [0, undefined] },
    {
      name: 'vantage points that do not answer abstain: one down and two silent is no majority',
      plan: planOf(3),
      state: streak(2, 50),
      observation: round(100, ['a', 'abstain', 'abstain']),
      votesDown: 1,
      quorum: 2,
      after: [0, undefined],
    },
    { name: 'a majority of all vantage points, silent ones included, still counts', plan: planOf(3), state: streak(1, 50), observation: round(100, ['a', 'a', 'abstain']), votesDown: 2, quorum: 2, after: [2, 50] },
    { name: 'four vantage points need three: two down is a tie, not a majority', plan: planOf(4), state: streak(1, 50), observation: round(100, ['a', 'a', 'none', 'none']), votesDown: 2, quorum: 3, after: [0, undefined] },
    {
      name: 'a single vantage point decides alone',
      plan: planOf(1, { failures: 1 }),
      state: fresh,
      observation: round(100, ['a']),
      votesDown: 1,
      quorum: 1,
      after: [1, 100],
      failover: 'reg-a seen down by 1 of 1 vantage points in 1 consecutive probes',
    },
    { name: 'the secondary down is no reason while the primary serves', plan: planOf(3), state: fresh, observation: round(100, ['b', 'b', 'b']), votesDown: 0, quorum: 2, after: [0, undefined] },
    {
      name: 'the `failures`-th round in a row fails over, detected when the streak began',
      plan: planOf(3),
      state: streak(2, 40),
      observation: round(100, ['a', 'both', 'none']),
      votesDown: 2,
      quorum: 2,
      after: [3, 40],
      failover: 'reg-a seen down by 2 of 3 vantage points in 3 consecutive probes',
    },
    { name: 'one round short of `failures`: keep watching', plan: planOf(3), state: streak(1, 40), observation: round(100, ['a', 'a', 'a']), votesDown: 3, quorum: 2, after: [2, 40] },
    { name: 'automatic failover off: the streak grows, nothing moves', plan: planOf(3, { automaticFailover: false }), state: streak(5, 40), observation: round(100, ['a', 'a', 'a']), votesDown: 3, quorum: 2, after: [6, 40] },
    { name: 'a failover or failback running: no second one', plan: planOf(3), state: streak(2, 40), observation: round(100, ['a', 'a', 'a'], { busy: true }), votesDown: 3, quorum: 2, after: [3, 40] },
    {
      name: 'past `failures` once the operation is over: fail over then',
      plan: planOf(3),
      state: streak(4, 40),
      observation: round(100, ['a', 'a', 'none']),
      votesDown: 2,
      quorum: 2,
      after: [5, 40],
      failover: 'reg-a seen down by 2 of 3 vantage points in 5 consecutive probes',
    },
    { name: 'serving from the secondary, the secondary is the side judged', plan: planOf(3), state: fresh, observation: round(100, ['b', 'b', 'a'], { active: 'secondary' }), votesDown: 2, quorum: 2, after: [1, 100] },
    { name: 'the secondary never fails back by itself, however long it is down', plan: planOf(3), state: streak(9, 10), observation: round(100, ['b', 'b', 'b'], { active: 'secondary' }), votesDown: 3, quorum: 2, after: [10, 10] },
    {
      name: 'the primary down while the secondary serves breaks no streak of the secondary',
      plan: planOf(3),
      state: streak(2, 10),
      observation: round(100, ['a', 'a', 'a'], { active: 'secondary' }),
      votesDown: 0,
      quorum: 2,
      after: [0, undefined],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { state, decision } = guardPolicy(c.plan, c.state, c.observation);
      assert.equal(c.observation.kind, 'round');
      assert.deepEqual(state.lastRound, { at: 100, votesDown: c.votesDown, quorum: c.quorum, probes: (c.observation as { probes: RoundProbes }).probes });
      assert.deepEqual([state.consecutiveDown, state.downSince], c.after);
      assert.deepEqual(decision, c.failover ? { kind: 'failover', reason: c.failover, detectedAt: c.after[1] } : { kind: 'watch' });
    });
  }
});

describe('after an operation', () => {
  const lastRound = { at: 90, votesDown: 3, quorum: 2, probes: {} };
  for (const kind of ['failover-failed', 'operation-completed'] as const) {
    test(`${kind}: the streak starts again from nothing, the last round stays on show`, () => {
      const { state, decision } = guardPolicy(planOf(3), { consecutiveDown: 4, downSince: 10, lastRound }, { kind });
      assert.deepEqual(state, { consecutiveDown: 0, downSince: undefined, lastRound });
      assert.deepEqual(decision, { kind: 'watch' });
    });
  }

  test('a failed failover is not retried at the next round: it takes a fresh streak of `failures` rounds', () => {
    const plan = planOf(3, { failures: 2 });
    let state: GuardPolicyState = fresh;
    const decisions: string[] = [];
    const see = (observation: GuardObservation) => {
      const judged = guardPolicy(plan, state, observation);
      state = judged.state;
      decisions.push(judged.decision.kind);
    };
    see(round(1, ['a', 'a', 'a']));
    see(round(2, ['a', 'a', 'a']));
    see({ kind: 'failover-failed' });
    see(round(3, ['a', 'a', 'a']));
    see(round(4, ['a', 'a', 'a']));
    assert.deepEqual(decisions, ['watch', 'failover', 'watch', 'watch', 'failover']);
    assert.deepEqual([state.consecutiveDown, state.downSince], [2, 3]);
  });
});
