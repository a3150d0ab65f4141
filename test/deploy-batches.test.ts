// A deploy's batches: what is out of service and what runs on top of the wanted replicas stays within the
// service's maxUnavailable and maxSurge, every machine is in exactly one batch, and approval makes a canary of one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planBatches } from '../workflows/deploy-batches.ts';

const machines = (n: number) => Array.from({ length: n }, (_, i) => `m${i + 1}`);
/** A batch as `m1+ m2-`: + a machine that starts each new replica first (surge), - one that stops the old first. */
const shape = (ids: string[], opts: Parameters<typeof planBatches>[1]) => planBatches(ids, opts).map((b) => `${b.canary ? 'canary ' : ''}${b.machines.map((m) => `${m.machineId}${m.surge ? '+' : '-'}`).join(' ')}`);

describe('deploy batches', () => {
  const cases: { name: string; n: number; maxUnavailable: number; maxSurge: number; approval?: boolean; want: string[] }[] = [
    { name: 'one unavailable: one machine at a time, old replica stopped first', n: 3, maxUnavailable: 1, maxSurge: 0, want: ['m1-', 'm2-', 'm3-'] },
    { name: 'one surge: one machine at a time, new replica started first', n: 3, maxUnavailable: 0, maxSurge: 1, want: ['m1+', 'm2+', 'm3+'] },
    { name: 'both: two machines at once, the first surging', n: 5, maxUnavailable: 1, maxSurge: 1, want: ['m1+ m2-', 'm3+ m4-', 'm5+'] },
    { name: 'more than the pool: one batch', n: 3, maxUnavailable: 5, maxSurge: 0, want: ['m1- m2- m3-'] },
    { name: 'approval: a canary of one, then the batches', n: 4, maxUnavailable: 2, maxSurge: 0, approval: true, want: ['canary m1-', 'm2- m3-', 'm4-'] },
    { name: 'approval with surge: the canary surges', n: 2, maxUnavailable: 0, maxSurge: 1, approval: true, want: ['canary m1+', 'm2+'] },
    { name: 'nothing to update: no batch', n: 0, maxUnavailable: 1, maxSurge: 0, approval: true, want: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(shape(machines(c.n), { maxUnavailable: c.maxUnavailable, maxSurge: c.maxSurge, approval: c.approval ?? false }), c.want);
    });
  }

  test('at any moment at most maxUnavailable replicas out and maxSurge on top, for every setting up to 4 x 4 on 9 machines', () => {
    for (let maxUnavailable = 0; maxUnavailable <= 4; maxUnavailable++) {
      for (let maxSurge = 0; maxSurge <= 4; maxSurge++) {
        if (maxUnavailable + maxSurge === 0) continue;
        for (const approval of [false, true]) {
          const batches = planBatches(machines(9), { maxUnavailable, maxSurge, approval });
          // Each machine replaces one replica at a time: a machine stopping first has one out, a surging one one on top.
          for (const b of batches) {
            assert.ok(b.machines.filter((m) => !m.surge).length <= maxUnavailable, `out of service in ${JSON.stringify(b)}`);
            assert.ok(b.machines.filter((m) => m.surge).length <= maxSurge, `surge in ${JSON.stringify(b)}`);
          }
          assert.deepEqual(
            batches.flatMap((b) => b.machines.map((m) => m.machineId)),
            machines(9),
          );
        }
      }
    }
  });

  test('maxUnavailable and maxSurge both 0 cannot be planned', () => {
    assert.throws(() => planBatches(machines(2), { maxUnavailable: 0, maxSurge: 0, approval: false }), /cannot both be 0/);
  });
});
