// Pure logic of the activity timing table (contracts/activity-timing.ts): what every workflow proxies its activities with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { msToNumber } from '@temporalio/common';
import { activityOptions, activityTiming, type ActivityTiming } from '../contracts/activity-timing.ts';

const entries = Object.entries(activityTiming) as [string, ActivityTiming][];

test('an activity on a heartbeat timer beats at least three times within its heartbeat timeout', () => {
  for (const [name, { heartbeat }] of entries) {
    if (!heartbeat || !('everyMs' in heartbeat)) continue;
    assert.ok(heartbeat.everyMs * 3 <= msToNumber(heartbeat.timeout), `${name}: every ${heartbeat.everyMs} ms, timeout ${heartbeat.timeout}`);
  }
});

test('every entry bounds its activity, and heartbeats well inside that bound', () => {
  for (const [name, timing] of entries) {
    // The guard's probe is bounded by its group's probe timeout, which the workflow adds.
    if (name === 'guardProbe') continue;
    const bound = timing.startToCloseTimeout ?? timing.scheduleToCloseTimeout;
    assert.ok(bound !== undefined, `${name} has no timeout`);
    if (timing.heartbeat) assert.ok(msToNumber(timing.heartbeat.timeout) < msToNumber(bound), `${name}: heartbeat timeout past its bound`);
  }
});

test("a workflow's options carry the entry's timeouts and retry, with the attempts it sets and where it runs", () => {
  const copy = activityOptions(activityTiming.copyImage, { maximumAttempts: 3, taskQueue: 'berth-idc-b', summary: 'copy' });
  assert.deepEqual(copy, {
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
    taskQueue: 'berth-idc-b',
    summary: 'copy',
  });
  assert.equal(activityOptions(activityTiming.copyImage).retry?.maximumAttempts, 10);
  // No heartbeat in the table, none asked of Temporal.
  assert.equal('heartbeatTimeout' in activityOptions(activityTiming.machineStep), false);
});
