// Secrets travel by reference: no password, token or key that the suite used may appear in any workflow history.
// This file sorts last; it waits until the other test files of the run have finished, then reads every history
// on the run's Temporal server and looks for every recorded secret, in the JSON and in every payload's decoded data.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { recordedSecrets } from './harness/secrets.ts';
import { connectTestTemporal } from './harness/temporal.ts';

/** The other test files of this run: processes with the same parent (node's test runner) as this one. */
function siblings(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(process.ppid);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

test('no secret the suite used appears in any workflow history', { timeout: 30 * 60_000 }, async (t) => {
  if (!process.env.BERTH_TEST_SECRETS_DIR) return t.skip('only meaningful in a whole `npm test` run, which records the secrets');
  while (siblings().length > 0) await sleep(500);
  const secrets = [...new Set(recordedSecrets())];
  assert.ok(secrets.length >= 10, `the suite recorded ${secrets.length} secrets`);
  const temporal = await connectTestTemporal();
  try {
    let histories = 0;
    const leaks: string[] = [];
    // The raw service: listing through the client would decode memos, and some are encrypted with a test's key.
    const service = temporal.client.workflowService;
    const runs: { workflowId: string; runId: string }[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await service.listWorkflowExecutions({ namespace: 'default', pageSize: 1000, nextPageToken });
      for (const e of page.executions ?? []) runs.push({ workflowId: e.execution!.workflowId!, runId: e.execution!.runId! });
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    for (const w of runs) {
      const json = historyToJSON(await temporal.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory());
      // Payload data is base64 in the JSON: search it decoded too.
      const decoded = [...json.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('latin1'));
      const text = [json, ...decoded].join('\n');
      histories++;
      for (const secret of secrets) if (text.includes(secret)) leaks.push(`${w.workflowId}: ${secret.slice(0, 4)}…`);
    }
    assert.ok(histories >= 20, `scanned ${histories} histories`);
    assert.deepEqual(leaks, []);
    t.diagnostic(`scanned ${histories} histories for ${secrets.length} secrets`);
  } finally {
    await temporal.close();
  }
});
