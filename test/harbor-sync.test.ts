// A sync rule in mode harbor, end to end: the schedule's run asks the source Harbor (the fixture, fronting a real
// docker-registry) to replicate what the target lacks, then berth checks the digests, which Harbor does not.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { reconcileSyncSchedules } from '../api/sync-schedules.ts';
import { scheduleId } from '../schedules/sync-rules.ts';
import type { SyncReport } from '../contracts/sync.ts';
import { startWorkers } from '../workers/run.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { startHarborFixture, type HarborFixture } from './harness/harbor-fixture.ts';
import { harborSpecProblems } from './harness/harbor-spec.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let harbor: HarborFixture;
let target: TestRegistry;
let api: TestApi;
let image: BuiltImage;
const rule = `harbor-${Date.now()}`;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  temporal = await connectTestTemporal();
  harbor = await startHarborFixture({ name: 'harbor-a' });
  target = await startedRegistry('idc-copy');
  cleanups.push(() => harbor.stop(), target.stop);
  image = await buildOciLayout(tempDir('layout'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 128 << 10, gzip: true }] }]);
  await pushWithSkopeo(image, harbor, 'library/app');
  const { config } = testConfig(
    'harbor-sync',
    temporal.address,
    [
      { registry: { ...harbor.registry, name: 'harbor-a', url: harbor.url, username: harbor.username, password: harbor.password }, idc: 'master', kind: 'harbor' },
      { registry: target, idc: 'idc-b', parent: 'master' },
    ],
    { maxAttempts: 1 },
    // Runs only when triggered: an hourly schedule.
    { syncRules: [{ name: rule, source: 'harbor-a', targets: ['idc-copy'], schedule: { every: '1h' }, mode: 'harbor', harborDeadlineSeconds: 3 }] },
  );
  const workers = await startWorkers(config);
  api = await testApi(config, temporal.client);
  cleanups.push(
    () => workers.shutdown(),
    () => api.close(),
    () => temporal.client.schedule.getHandle(scheduleId(rule)).delete(),
  );
  await reconcileSyncSchedules(temporal.client, config);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

/** Triggers the rule and waits for the run's drift report (a failed run's report is in its failure details). */
async function runOnce(): Promise<{ status: string; error?: string; report: SyncReport }> {
  const before = (await api.inject({ url: `/v1/sync-rules/${rule}/reports` })).json().reports.length;
  assert.equal((await api.inject({ method: 'POST', url: `/v1/sync-rules/${rule}/run` })).statusCode, 202);
  for (let i = 0; i < 120; i++) {
    const { reports } = (await api.inject({ url: `/v1/sync-rules/${rule}/reports` })).json();
    if (reports.length > before && reports[0].status !== 'RUNNING') return reports[0];
    await sleep(250);
  }
  return assert.fail('the triggered run did not finish');
}

test('mode harbor: Harbor replicates, berth verifies; a stuck execution is stopped at the deadline and reported', async () => {
  const ok = await runOnce();
  assert.equal(ok.status, 'COMPLETED', JSON.stringify(ok));
  assert.deepEqual(ok.report.pairs[0].fixed, ['library/app:1.0']);
  assert.equal(await digestWithSkopeo(target, 'library/app:1.0'), image.digest, 'checked independently of berth');
  assert.equal(harbor.executions.at(-1)?.status, 'Succeed', 'Harbor ran the replication');

  const next = await buildOciLayout(tempDir('layout'), '1.1', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 64 << 10 }] }]);
  await pushWithSkopeo(next, harbor, 'library/app');
  harbor.stuck = true;
  try {
    const stuck = await runOnce();
    assert.equal(stuck.status, 'FAILED');
    assert.deepEqual(stuck.report.pairs[0].missing, ['library/app:1.1']);
    assert.match(stuck.report.pairs[0].failed[0].error, /was stuck: still InProgress after .*berth stopped it/);
    assert.equal(harbor.executions.at(-1)?.status, 'Stopped', 'berth stopped the execution on Harbor');
  } finally {
    harbor.stuck = false;
  }
  assert.deepEqual(harbor.exchanges.flatMap(harborSpecProblems), [], "the worker's requests and the fixture's answers as Harbor's API describes them");
});
