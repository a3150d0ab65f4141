// The comparison at the heart of reconciliation, as pure logic: which machines are orphans, ghosts or drift when
// provisionings and destroys run while it looks, and what they cost. (test/reconcile.test.ts runs it for real.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Machine } from '../activities/cloud/provider.ts';
import type { MachineRecord, MachineState } from '../inventory/index.ts';
import { reconcileReport } from '../activities/reconcile/report.ts';

const now = new Date('2026-03-01T12:00:00Z');
const row = (id: string, state: MachineState, providerId: string | null): MachineRecord => ({
  id,
  cluster: 'c',
  pool: 'web',
  provider: 'docker',
  providerId,
  name: id,
  address: null,
  sshPort: null,
  state,
  hostKeyFingerprint: null,
  instanceType: 'small',
  hourlyPrice: 0.5,
  createdAt: '2026-03-01T00:00:00Z',
  readyAt: null,
  destroyedAt: null,
  failureReason: null,
});
const at = (id: string, state: Machine['state'], tags: Record<string, string> = {}): Machine => ({ id, state, instanceType: 'small', createdAt: '2026-03-01T10:00:00Z', tags: { 'berth:cluster': 'c', ...tags } });
const report = (before: MachineRecord[], atProvider: Machine[], after = before) =>
  reconcileReport({ cluster: 'c', provider: 'docker', installation: 'here', before, atProvider, after, price: (t) => (t === 'small' ? 0.5 : null), now });

test('a machine of a live row is no orphan, by provider id or by the key of a create in flight', () => {
  const r = report([row('m1', 'ready', 'p1'), row('m2', 'requested', null)], [at('p1', 'running'), at('p2', 'pending', { 'berth:idempotency-key': 'm2' })]);
  assert.deepEqual([r.orphans, r.ghosts, r.drift], [[], [], []]);
});

test('orphans: whose installation made them, what they cost so far and a month', () => {
  const r = report([], [at('p1', 'running', { 'berth:installation': 'here', 'berth:pool': 'web', 'berth:name': 'web-3' }), at('p2', 'stopped', { 'berth:installation': 'before' }), { ...at('p3', 'running'), instanceType: 'odd' }]);
  assert.deepEqual(
    r.orphans.map((o) => [o.providerId, o.pool, o.name, o.installation, o.madeHere, o.hourlyPrice, o.costSoFar]),
    [
      ['p1', 'web', 'web-3', 'here', true, 0.5, 1],
      ['p2', null, null, 'before', false, 0.5, 1],
      ['p3', null, null, null, false, null, null],
    ],
  );
  assert.deepEqual(r.monthlyCost, { orphans: 730, ghosts: 0 });
});

test('ghosts: live in both reads and held by no machine at the provider; a terminated one counts as gone', () => {
  const before = [row('m1', 'ready', 'p1'), row('m2', 'failed', 'p2'), row('m3', 'ready', 'p3'), row('m4', 'destroying', 'p4'), row('m5', 'requested', null)];
  // m3 was decommissioned while the provider was listed: not a ghost.
  const after = [before[0], before[1], { ...before[2], state: 'decommissioning' as const }, before[3], before[4]];
  const r = report(before, [at('p2', 'terminated')], after);
  assert.deepEqual(
    r.ghosts.map((g) => [g.machineId, g.state, g.providerId]),
    [
      ['m1', 'ready', 'p1'],
      ['m2', 'failed', 'p2'],
    ],
  );
  assert.deepEqual(r.monthlyCost, { orphans: 0, ghosts: 730 });
  // The dead container is m2's (its row names it): no orphan.
  assert.deepEqual(r.orphans, []);
});

test('a row that appears while the provider is listed is no orphan; drift is a running machine the provider has stopped', () => {
  const created = row('m9', 'creating', 'p9');
  const r = report([row('m1', 'ready', 'p1'), row('m2', 'initializing', 'p2')], [at('p1', 'stopped'), at('p2', 'running'), at('p9', 'pending')], [row('m1', 'ready', 'p1'), row('m2', 'initializing', 'p2'), created]);
  assert.deepEqual(r.orphans, []);
  assert.deepEqual(
    r.drift.map((d) => [d.machineId, d.inventoryState, d.providerState]),
    [['m1', 'ready', 'stopped']],
  );
  assert.equal(r.drift[0].remedy, 'see why the provider has it stopped; decommission it (bin/berth decommission m1) if it is not coming back');
});
