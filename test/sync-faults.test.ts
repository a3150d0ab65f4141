// A sync's batches under faults at the target: a transient fault is retried (by Temporal, for the images it hit);
// an image or a repository that fails for good is reported, and everything else still arrives.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { BerthConfig } from '../config/load.ts';
import { syncRuleSchema } from '../config/schema.ts';
import { syncPlan } from '../planning/sync-plan.ts';
import type { SyncReport } from '../contracts/sync.ts';
import { syncRegistries } from '../workflows/sync-registries.ts';
import { startWorkers } from '../workers/run.ts';
import { registryClient, startedRegistry, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { catalogRefs, pushTinyImages } from '../testbed/catalog.ts';
import { workflowTree } from '../testbed/histories.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let config: BerthConfig;
let proxy: RegistryProxy;
const reg: Record<string, TestRegistry> = {};
const cleanups: (() => Promise<unknown>)[] = [];
let digests: Map<string, string>;
const refs = catalogRefs('faulty/app', 3, 6);

before(async () => {
  temporal = await connectTestTemporal();
  for (const name of ['src', 'dst']) {
    reg[name] = await startedRegistry(`faults-${name}`);
    cleanups.push(reg[name].stop);
  }
  const client = registryClient(reg.src);
  digests = await pushTinyImages(client, refs);
  await client.close();
  proxy = await startRegistryProxy(reg.dst.url, {
    refuseWhen: [
      // Transient: the first two manifest writes into app-0 meet a registry that is briefly down.
      { match: (m, path) => m === 'PUT' && path.startsWith('/v2/faulty/app-0/manifests/'), times: 2, status: 503, code: 'UNAVAILABLE' },
      // For good: one image the target refuses, and a repository whose tag list it refuses to show.
      { match: (m, path) => m === 'PUT' && path === '/v2/faulty/app-1/manifests/1.2', status: 400, code: 'MANIFEST_INVALID' },
      { match: (m, path) => m === 'GET' && path.startsWith('/v2/faulty/app-2/tags/list'), status: 400, code: 'NAME_INVALID' },
    ],
  });
  cleanups.push(() => proxy.close());
  ({ config } = testConfig(
    'faults',
    temporal.address,
    [
      { registry: reg.src, idc: 'idc-a' },
      { registry: reg.dst, idc: 'idc-b', url: proxy.url },
    ],
    { maxAttempts: 3 },
  ));
  const workers = await startWorkers(config);
  cleanups.push(() => workers.shutdown());
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

test('a transient fault is retried for the images it hit; an image and a repository that fail for good are reported, the rest arrives', async () => {
  const rule = syncRuleSchema.parse({ name: 'faults', source: reg.src.name, targets: [reg.dst.name], schedule: { every: '24h' } });
  const workflowId = `sync:faults-${Date.now()}`;
  const handle = await temporal.client.workflow.start(syncRegistries, { workflowId, taskQueue: config.taskQueues.main, args: [syncPlan(config, rule)] });
  const failure = await handle.result().then(
    () => assert.fail('the run should end SyncIncomplete'),
    (err: WorkflowFailedError) => err,
  );
  assert.match(failure.cause?.message ?? '', /sync rule faults: 2 images or listings failed/);
  const [pair] = ((failure.cause as { details?: unknown[] }).details![0] as SyncReport).pairs;
  assert.deepEqual(pair.counts, { inSync: 0, failed: 2, missing: 12, different: 0, extra: 0, fixed: 11, deleted: 0 });
  assert.deepEqual(pair.failed.map((f) => f.image).sort(), ['faulty/app-1:1.2', 'faulty/app-2']);
  assert.match(pair.failed.find((f) => f.image === 'faulty/app-1:1.2')!.error, /MANIFEST_INVALID/);
  assert.match(pair.failed.find((f) => f.image === 'faulty/app-2')!.error, /NAME_INVALID/);

  const dst = registryClient(reg.dst);
  for (const ref of refs.filter((r) => r.repository !== 'faulty/app-2')) {
    const expected = ref.repository === 'faulty/app-1' && ref.tag === '1.2' ? null : digests.get(`${ref.repository}:${ref.tag}`);
    assert.equal(await dst.headManifest(ref.repository, ref.tag), expected, `${ref.repository}:${ref.tag}`);
  }
  await dst.close();

  // Temporal retried the batch that met the outage (the retry copied only what was left).
  let attempts = 0;
  for await (const r of workflowTree(temporal.client, workflowId, handle.firstExecutionRunId)) {
    for (const e of r.history.events ?? []) attempts = Math.max(attempts, e.activityTaskStartedEventAttributes?.attempt ?? 0);
  }
  assert.ok(attempts >= 2, `the copies were retried (${attempts} attempts)`);
});
