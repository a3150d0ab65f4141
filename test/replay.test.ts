// Workflow code must stay deterministic for histories already written: every committed history (recorded from
// the integration tests with BERTH_RECORD_HISTORIES=1 npm test) must replay against the current workflows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../workers/run.ts';
import { committedHistories } from '../testbed/histories.ts';

test('committed workflow histories replay without nondeterminism errors', async () => {
  const histories = committedHistories();
  assert.ok(histories.length >= 5, `found ${histories.length} histories`);
  const failures: string[] = [];
  for await (const r of Worker.runReplayHistories({ workflowsPath }, histories)) {
    if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
  }
  assert.deepEqual(failures, []);
});
