import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { BerthConfig } from '../config/load.ts';
import type { distributeImage, DistributeImageResult } from '../workflows/distribute-image.ts';
import { startWorkers } from '../workers/run.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from './harness/berth.ts';
import { recordHistory } from './harness/histories.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from './harness/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { testApi, type TestApi } from './harness/api.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

// A 3-level tree of real registries: master -> idc-a (-> sub-a1, sub-a2) and master -> idc-b (two registries).
// master and idc-a sit behind counting proxies, so the test sees what each of them served to its children.
let temporal: TestTemporal;
let image: BuiltImage;
let config: BerthConfig;
let api: TestApi;
const registries: Record<string, TestRegistry> = {};
const proxies: Record<string, RegistryProxy> = {};
const cleanups: (() => Promise<unknown>)[] = [];
const repo = 'platform/web';

before(async () => {
  temporal = await connectTestTemporal();
  for (const name of ['hub', 'a', 'a1', 'a2', 'b', 'b2']) {
    registries[name] = await startedRegistry(name);
    cleanups.push(registries[name].stop);
  }
  for (const name of ['hub', 'a']) {
    proxies[name] = await startRegistryProxy(registries[name].url);
    cleanups.push(proxies[name].close);
  }
  image = await buildOciLayout(tempDir('layout'), '2.1', [
    { os: 'linux', architecture: 'amd64', layers: [{ size: 2 << 20, gzip: true }, { size: 512 << 10 }] },
    { os: 'linux', architecture: 'arm64', layers: [{ size: 1 << 20, gzip: true }] },
  ]);
  await pushWithSkopeo(image, registries.hub, repo);
  ({ config } = testConfig(
    'distribute',
    temporal.address,
    [
      { registry: registries.hub, idc: 'master', url: proxies.hub.url },
      { registry: registries.a, idc: 'idc-a', parent: 'master', url: proxies.a.url },
      { registry: registries.a1, idc: 'sub-a1', parent: 'idc-a' },
      { registry: registries.a2, idc: 'sub-a2', parent: 'idc-a' },
      { registry: registries.b, idc: 'idc-b', parent: 'master' },
      { registry: registries.b2, idc: 'idc-b' },
    ],
    // An unreachable IDC is reported after two attempts rather than ten, to keep the test short.
    { maxAttempts: 2 },
  ));
  const workers = await startWorkers(config);
  cleanups.push(() => workers.shutdown());
  api = await testApi(config, temporal.client);
  cleanups.push(() => api.close());
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

/** Starts a distribution the way users do, through the API, and waits for its result. */
async function distribute(id: string): Promise<DistributeImageResult> {
  const res = await api.inject({ method: 'POST', url: '/v1/distributions', payload: { image: `${repo}:${image.tag}` } });
  assert.equal(res.statusCode, 202, res.body);
  const handle = temporal.client.workflow.getHandle<typeof distributeImage>(res.json().workflowId, res.json().runId);
  try {
    return await handle.result();
  } finally {
    await recordHistory(temporal.client, handle.workflowId, id);
  }
}

describe('distributeImage', () => {
  test('a sub-IDC that is down is reported failed while its siblings finish; a rerun completes it', async () => {
    await registries.a2.stop();
    const failure = await distribute('distribute-partial').then(
      () => assert.fail('the distribution should report sub-a2 as failed'),
      (err) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError && failure.cause instanceof ApplicationFailure);
    assert.equal(failure.cause.type, 'DistributionIncomplete');
    assert.match(failure.cause.message, /reached 3 of 4 IDCs; sub-a2 failed: .*a2: RegistryUnavailable/);
    const results = failure.cause.details?.[0] as DistributeImageResult;
    for (const idc of ['idc-a', 'sub-a1', 'idc-b']) assert.equal(results[idc].status, 'done', `${idc} finished`);
    assert.equal(results['sub-a2'].status, 'failed');
    assert.match(results['sub-a2'].error ?? '', /a2/);
    for (const name of ['a', 'a1', 'b', 'b2']) {
      assert.equal(await digestWithSkopeo(registries[name], `${repo}:${image.tag}`), image.digest, `${name} has the image`);
    }

    await registries.a2.start();
    const rerun = await distribute('distribute-rerun');
    assert.deepEqual(
      Object.fromEntries(Object.entries(rerun).map(([idc, r]) => [idc, r.status])),
      { 'idc-a': 'done', 'sub-a1': 'done', 'sub-a2': 'done', 'idc-b': 'done' },
    );
    assert.equal(await digestWithSkopeo(registries.a2, `${repo}:${image.tag}`), image.digest);
    assert.equal(rerun['sub-a2'].bytes, image.blobBytes, 'the rerun copied the whole image to sub-a2');
    assert.equal(rerun['sub-a1'].bytes, 0, 'the rerun sent nothing to sub-a1, which had the image');

    // Each IDC pulled from its parent: master served idc-a and idc-b once each (over two runs), idc-a served
    // each of its sub-IDCs once; b2 filled from b inside its IDC.
    assert.equal(proxies.hub.downloadedBytes, 2 * image.blobBytes, 'master served the image to its two child IDCs only');
    assert.equal(proxies.a.downloadedBytes, 2 * image.blobBytes, 'idc-a served the image to its two sub-IDCs');
    assert.equal(rerun['sub-a2'].from, 'a');
    assert.equal(rerun['idc-b'].from, 'hub');
  });
});

test('an IDC that is down fails its subtree only: its sub-IDCs are skipped, the other branch finishes', async () => {
  await registries.a.stop();
  try {
    const failure = await distribute('distribute-subtree-down').then(
      () => assert.fail('the distribution should report idc-a as failed'),
      (err) => err,
    );
    const results = failure.cause.details?.[0] as DistributeImageResult;
    assert.equal(results['idc-a'].status, 'failed');
    assert.deepEqual([results['sub-a1'].status, results['sub-a2'].status], ['skipped', 'skipped']);
    assert.equal(results['sub-a1'].error, 'idc-a did not receive the image');
    assert.equal(results['idc-b'].status, 'done');
  } finally {
    await registries.a.start();
  }
});
