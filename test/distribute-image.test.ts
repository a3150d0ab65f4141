import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { BerthConfig } from '../config/load.ts';
import type { DistributeImageResult } from '../contracts/distribution.ts';
import type { distributeImage } from '../workflows/distribute-image.ts';
import { startWorkers } from '../workers/run.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { recordHistory } from '../testbed/histories.ts';
import { buildOciLayout, digestWithSkopeo, manifestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

// A 3-level tree of real registries: master -> idc-a (-> sub-a1, sub-a2) and master -> idc-b (two registries).
// master and idc-a sit behind counting proxies, so the test sees what each of them served to its children. The last
// test has a chain of its own, with a slow first link.
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
async function distribute(id: string, repository = repo): Promise<DistributeImageResult> {
  const res = await api.inject({ method: 'POST', url: '/v1/distributions', payload: { image: `${repository}:${image.tag}` } });
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
    assert.deepEqual(Object.fromEntries(Object.entries(rerun).map(([idc, r]) => [idc, r.status])), { 'idc-a': 'done', 'sub-a1': 'done', 'sub-a2': 'done', 'idc-b': 'done' });
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
  // An image no IDC has yet: the sub-IDCs, which start with idc-a and wait on it, never get a blob.
  await pushWithSkopeo(image, registries.hub, 'platform/api');
  await registries.a.stop();
  try {
    const failure = await distribute('distribute-subtree-down', 'platform/api').then(
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

test('pipelined: down a 4-level chain, each IDC pulls a blob as soon as its parent holds it; each link carries the image once', async () => {
  // A slow first link (1 MB/s per download) makes idc-1 take seconds to receive six 1 MiB layers, one at a time.
  const chain = await Promise.all(['p0', 'p1', 'p2', 'p3'].map((n) => startedRegistry(n)));
  const served = [await startRegistryProxy(chain[0].url, { downloadBytesPerSecond: 1_000_000 }), await startRegistryProxy(chain[1].url), await startRegistryProxy(chain[2].url)];
  const local: (() => Promise<unknown>)[] = [...chain.map((r) => r.stop), ...served.map((p) => p.close)];
  try {
    const layered = await buildOciLayout(tempDir('chain'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: Array.from({ length: 6 }, () => ({ size: 1 << 20 })) }]);
    await pushWithSkopeo(layered, chain[0], 'platform/chain');
    const { config: chainConfig } = testConfig('pipeline', temporal.address, [
      { registry: chain[0], idc: 'idc-0', url: served[0].url },
      { registry: chain[1], idc: 'idc-1', parent: 'idc-0', url: served[1].url },
      { registry: chain[2], idc: 'idc-2', parent: 'idc-1', url: served[2].url },
      { registry: chain[3], idc: 'idc-3', parent: 'idc-2' },
    ]);
    const workers = await startWorkers(chainConfig);
    local.push(() => workers.shutdown());
    const chainApi = await testApi(chainConfig, temporal.client);
    local.push(() => chainApi.close());

    const firstLayer = JSON.parse((await manifestWithSkopeo(chain[0], 'platform/chain:1.0')).toString()).layers[0].digest as string;
    const res = await chainApi.inject({ method: 'POST', url: '/v1/distributions', payload: { image: 'platform/chain:1.0' } });
    assert.equal(res.statusCode, 202, res.body);
    const handle = temporal.client.workflow.getHandle<typeof distributeImage>(res.json().workflowId, res.json().runId);
    // Watch the two ends: when the last IDC holds the first layer, and when idc-1 holds the whole image (its tag).
    const [last, first] = [registryClient(chain[3]), registryClient(chain[1])];
    local.push(
      () => last.close(),
      () => first.close(),
    );
    let lastHadLayerAt: number | undefined;
    let firstTaggedAt: number | undefined;
    let finished = false;
    const result = handle.result().finally(() => (finished = true));
    while (!finished && (lastHadLayerAt === undefined || firstTaggedAt === undefined)) {
      lastHadLayerAt ??= (await last.hasBlob('platform/chain', firstLayer)) ? Date.now() : undefined;
      firstTaggedAt ??= (await first.headManifest('platform/chain', '1.0')) ? Date.now() : undefined;
      await sleep(50);
    }
    const results = await result;
    assert.deepEqual(
      Object.values(results).map((r) => r.status),
      ['done', 'done', 'done'],
    );
    assert.ok(lastHadLayerAt !== undefined && firstTaggedAt !== undefined && lastHadLayerAt < firstTaggedAt, 'idc-3 had the first layer before idc-1 had the whole image');
    for (const r of chain.slice(1)) assert.equal(await digestWithSkopeo(r, 'platform/chain:1.0'), layered.digest);
    for (const [i, proxy] of served.entries()) assert.equal(proxy.downloadedBytes, layered.blobBytes, `idc-${i} served the image once, to idc-${i + 1}`);
  } finally {
    for (const c of local.reverse()) await c().catch(() => undefined);
  }
});
