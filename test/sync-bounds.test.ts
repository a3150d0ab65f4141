// Histories stay bounded whatever the catalog: a sync into an empty registry of 50 repositories x 200 tags and of
// one repository of 5,000 tags completes, and the run's own histories show that no history and no payload came near
// Temporal's limits. A run past its events per run continues as new, its report carried along.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { BerthConfig } from '../config/load.ts';
import { syncPlan } from '../planning/sync-plan.ts';
import { syncRuleSchema } from '../config/schema.ts';
import type { SyncPlan, SyncReport } from '../contracts/sync.ts';
import { syncRegistries } from '../workflows/sync-registries.ts';
import { startWorkers } from '../workers/run.ts';
import { registryClient, startedRegistry, testConfig, type TestRegistry } from './harness/berth.ts';
import { catalogRefs, pushTinyImages } from './harness/catalog.ts';
import { historyBounds, workflowTree } from './harness/histories.ts';
import { digestWithSkopeo } from './harness/oci-layout.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let config: BerthConfig;
const reg: Record<string, TestRegistry> = {};
const cleanups: (() => Promise<unknown>)[] = [];
let digests: Map<string, string>;
const wide = catalogRefs('wide/app', 50, 200);
const deep = catalogRefs('deep/app', 1, 5000);

before(async () => {
  temporal = await connectTestTemporal();
  // No auth: htpasswd's bcrypt on each of the ~200,000 requests would be most of the test's time.
  for (const name of ['src', 'dst', 'dst2']) {
    reg[name] = await startedRegistry(`bounds-${name}`, { auth: 'none' });
    cleanups.push(reg[name].stop);
  }
  const client = registryClient(reg.src);
  digests = await pushTinyImages(client, [...wide, ...deep]);
  await client.close();
  ({ config } = testConfig('bounds', temporal.address, [
    { registry: reg.src, idc: 'idc-a' },
    { registry: reg.dst, idc: 'idc-b' },
    { registry: reg.dst2, idc: 'idc-c' },
  ]));
  const workers = await startWorkers(config);
  cleanups.push(() => workers.shutdown());
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

/** Runs a plan as its schedule would, to its end; returns the run's ID and report (in its failure's details if any failed). */
async function run(plan: SyncPlan, name: string) {
  const workflowId = `sync:${name}-${Date.now()}`;
  const handle = await temporal.client.workflow.start(syncRegistries, { workflowId, taskQueue: config.taskQueues.main, args: [plan] });
  const report = await handle.result().catch((err: WorkflowFailedError) => (err.cause as ApplicationFailure).details![0] as SyncReport);
  return { workflowId, runId: handle.firstExecutionRunId, report };
}

/** Every tag of `repository` on a registry. */
async function tagsOn(r: TestRegistry, repository: string): Promise<string[]> {
  const client = registryClient(r);
  const tags: string[] = [];
  for await (const page of client.listTags(repository)) tags.push(...page);
  await client.close();
  return tags.sort();
}

describe('sync of large catalogs', { timeout: 60 * 60_000 }, () => {
  test('50 x 200 tags and 1 x 5,000 tags into an empty registry: complete, every history < 10,000 events, every payload < 256 KiB', async () => {
    const rule = syncRuleSchema.parse({ name: 'bounds', source: reg.src.name, targets: [reg.dst.name], schedule: { every: '24h' } });
    const { workflowId, runId, report } = await run(syncPlan(config, rule), 'bounds');

    const [pair] = report.pairs;
    assert.deepEqual(pair.counts, { inSync: 0, failed: 0, missing: 15_000, different: 0, extra: 0, fixed: 15_000, deleted: 0 }, JSON.stringify(pair.failed));
    assert.equal(pair.repositories, 51);
    assert.equal(pair.fixed.length, 100, 'the report lists the first 100 and counts the rest');
    for (const repository of ['deep/app-0', 'wide/app-0', 'wide/app-49']) {
      assert.deepEqual(await tagsOn(reg.dst, repository), await tagsOn(reg.src, repository), `${repository}: every tag arrived`);
    }
    const dst = registryClient(reg.dst);
    for (const ref of [...wide, ...deep].filter((_, i) => i % 97 === 0)) {
      assert.equal(await dst.headManifest(ref.repository, ref.tag), digests.get(`${ref.repository}:${ref.tag}`), `${ref.repository}:${ref.tag}`);
    }
    await dst.close();
    assert.equal(await digestWithSkopeo(reg.dst, 'deep/app-0:1.4999'), digests.get('deep/app-0:1.4999'), 'checked independently of berth');

    const bounds = await historyBounds(temporal.client, workflowId, runId);
    assert.ok(bounds.longest.events < 10_000, `longest history: ${JSON.stringify(bounds.longest)}`);
    assert.ok(bounds.largestPayload.bytes < 256 * 1024, `largest payload: ${JSON.stringify(bounds.largestPayload)}`);
    // The 5,000 tags came in pages (of about 400 tags to fix), not as one tag list.
    let diffPages = 0;
    for await (const r of workflowTree(temporal.client, workflowId, runId)) {
      diffPages += (r.history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'diffRepositories').length;
    }
    assert.ok(diffPages >= 5000 / 450, `${diffPages} drift pages`);
  });

  test('past its events per run, a run and its batches continue as new and still report every image', async () => {
    // 11 repositories of 111 tags (one per batch) and one of 1,111 (3 drift pages).
    const rule = syncRuleSchema.parse({
      name: 'bounds-can',
      source: reg.src.name,
      targets: [reg.dst2.name],
      repositories: { include: ['wide/app-1*', 'deep/**'] },
      tags: { include: ['1.1*'] },
      schedule: { every: '24h' },
    });
    // Events per run are checked as each drift page arrives: deep/app-0's second page is looked at after the first
    // page's 4 copies (one after another, so each takes a workflow task: >= 5 events), past 20 however the workflow
    // tasks fall; at the first page (about 10 events) no batch is. 50 was not enough on a loaded machine, where
    // activity completions share workflow tasks.
    const plan = { ...syncPlan(config, rule), repositoriesPerBatch: 1, eventsPerRun: 20 };
    const { workflowId, runId, report } = await run(plan, 'bounds-can');

    const [pair] = report.pairs;
    assert.deepEqual(pair.counts, { inSync: 0, failed: 0, missing: 11 * 111 + 1111, different: 0, extra: 0, fixed: 11 * 111 + 1111, deleted: 0 }, JSON.stringify(pair.failed));
    assert.equal(pair.repositories, 12);
    const expected = (await tagsOn(reg.src, 'deep/app-0')).filter((t) => t.startsWith('1.1'));
    assert.deepEqual(await tagsOn(reg.dst2, 'deep/app-0'), expected);

    const runsOf = new Map<string, number>();
    for await (const r of workflowTree(temporal.client, workflowId, runId)) runsOf.set(r.workflowId, (runsOf.get(r.workflowId) ?? 0) + 1);
    assert.ok(runsOf.get(workflowId)! >= 2, `the run continued as new: ${JSON.stringify([...runsOf])}`);
    const deepBatch = [...runsOf].find(([id]) => id.endsWith('/0'));
    assert.ok(deepBatch && deepBatch[1] >= 2, `the batch of deep/app-0 continued as new: ${JSON.stringify([...runsOf])}`);
    const bounds = await historyBounds(temporal.client, workflowId, runId);
    assert.ok(bounds.longest.events < 10_000, JSON.stringify(bounds.longest));
  });
});
