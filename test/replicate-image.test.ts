import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { progressQuery, type ReplicateImageInput, type TargetProgress } from '../contracts/replication.ts';
import { replicateImage } from '../workflows/replicate-image.ts';
import { idcTaskQueue, type BerthConfig } from '../config/load.ts';
import { startWorkers, workflowsPath, type WorkerSet } from '../workers/run.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';
import { registryClient, startedRegistry, tempDir, testConfig, testRegistry, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { startRegistryProxy } from './harness/proxy.ts';
import { startTokenIssuer } from './harness/token-issuer.ts';
import { activityEvents, recordHistory } from '../testbed/histories.ts';
import proto from '@temporalio/proto';

let temporal: TestTemporal;
const tsMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t!.seconds) * 1000 + (t!.nanos ?? 0) / 1e6;
const cleanups: (() => Promise<unknown>)[] = [];
let source: TestRegistry;
let image: BuiltImage;
const repo = 'lib/app';

/** Starts berth's workers for a config and registers their shutdown. */
async function workersFor(config: BerthConfig): Promise<WorkerSet> {
  const workers = await startWorkers(config);
  cleanups.push(() => workers.shutdown());
  return workers;
}

function inputFor(config: BerthConfig, sourceName: string, targets: string[], img = `${repo}:${image.tag}`): ReplicateImageInput {
  const idcOf = (name: string) => config.registries.find((r) => r.name === name)!.idc;
  return {
    image: img,
    source: { registry: sourceName, idc: idcOf(sourceName), taskQueue: idcTaskQueue(config, idcOf(sourceName)) },
    targets: targets.map((t) => ({ registry: t, idc: idcOf(t), taskQueue: idcTaskQueue(config, idcOf(t)) })),
  };
}

async function run(config: BerthConfig, id: string, input: ReplicateImageInput) {
  const handle = await temporal.client.workflow.start(replicateImage, { taskQueue: config.taskQueues.main, workflowId: `${id}-${Date.now()}`, args: [input] });
  try {
    return await handle.result();
  } finally {
    await recordHistory(temporal.client, handle.workflowId, id);
  }
}

before(async () => {
  temporal = await connectTestTemporal();
  source = await startedRegistry('source');
  // An OCI index of two platforms; the base layer is shared, so it is one blob.
  image = await buildOciLayout(tempDir('layout'), '1.0', [
    {
      os: 'linux',
      architecture: 'amd64',
      layers: [
        { size: 3 << 20, gzip: true },
        { size: 1 << 20, gzip: true },
      ],
    },
    {
      os: 'linux',
      architecture: 'arm64',
      layers: [
        { size: 2 << 20, gzip: true },
        { size: 512 << 10, gzip: true },
        { size: 64 << 10, gzip: true },
      ],
    },
  ]);
  await pushWithSkopeo(image, source, repo);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await source?.stop();
  await temporal?.close();
});

describe('replicateImage', () => {
  test('copies a two-platform OCI index to two targets with matching digests, then copies nothing the second time', async () => {
    const b = await startedRegistry('b');
    const c = await startedRegistry('c');
    cleanups.push(b.stop, c.stop);
    const { config } = testConfig('fanout', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: b, idc: 'idc-b' },
      { registry: c, idc: 'idc-c', parent: 'idc-b' },
    ]);
    await workersFor(config);

    const first = await run(config, 'fanout', inputFor(config, 'source', ['b', 'c']));
    for (const [name, reg] of [
      ['b', b],
      ['c', c],
    ] as const) {
      assert.equal(first[name].digest, image.digest, `berth reports the source digest for ${name}`);
      assert.equal(await digestWithSkopeo(reg, `${repo}:1.0`), image.digest, `skopeo sees the same index on ${name}`);
      assert.equal(first[name].bytesCopied, image.blobBytes, `every blob byte crossed to ${name} once`);
      assert.equal(first[name].blobsSkipped, 0);
      // Every platform arrived, not only the one the machine runs.
      for (const arch of ['amd64', 'arm64']) {
        const client = registryClient(reg);
        const index = JSON.parse((await client.getManifest(repo, '1.0')).bytes.toString());
        const child = index.manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === arch);
        assert.ok(await client.headManifest(repo, child.digest), `${arch} manifest on ${name}`);
        await client.close();
      }
    }

    const second = await run(config, 'fanout-again', inputFor(config, 'source', ['b', 'c']));
    for (const name of ['b', 'c']) {
      assert.equal(second[name].bytesCopied, 0, `nothing moved to ${name} the second time`);
      assert.equal(second[name].blobsCopied, 0);
      assert.equal(second[name].digest, image.digest);
    }
  });

  test('while a copy runs, the progress query shows its bytes', async () => {
    // A slow link from the source: 48 MiB at 6 MiB/s takes about 8 s.
    const slowLink = await startRegistryProxy(source.url, { downloadBytesPerSecond: 6 << 20 });
    const target = await startedRegistry('watched');
    cleanups.push(slowLink.close, target.stop);
    const big = await buildOciLayout(tempDir('watched'), 'big', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 48 << 20 }] }]);
    await pushWithSkopeo(big, source, 'lib/watched');
    const { config } = testConfig('progress', temporal.address, [
      { registry: source, idc: 'idc-a', url: slowLink.url },
      { registry: target, idc: 'idc-w' },
    ]);
    await workersFor(config);
    const handle = await temporal.client.workflow.start(replicateImage, {
      taskQueue: config.taskQueues.main,
      workflowId: `progress-${Date.now()}`,
      args: [inputFor(config, 'source', ['watched'], 'lib/watched:big')],
    });
    let seen: TargetProgress | undefined;
    for (let i = 0; i < 100 && !(seen && seen.bytesCopied > 0); i++) {
      await sleep(200);
      seen = (await handle.query(progressQuery)).watched;
    }
    assert.equal(seen?.status, 'copying');
    assert.ok(seen.bytesCopied > 0 && seen.bytesCopied < big.blobBytes, `mid-copy bytes: ${seen.bytesCopied}`);
    assert.equal(seen.bytesTotal, big.blobBytes);
    const result = await handle.result();
    await recordHistory(temporal.client, handle.workflowId, 'progress-signals');
    assert.equal(result.watched.digest, big.digest);
    assert.equal((await handle.query(progressQuery)).watched.status, 'done');
  });

  test('a target that is down at the start and comes up a few seconds later is completed without help', async () => {
    const late = await testRegistry('late');
    cleanups.push(late.stop);
    const { config } = testConfig('late', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: late, idc: 'idc-late' },
    ]);
    await workersFor(config);
    const handle = await temporal.client.workflow.start(replicateImage, {
      taskQueue: config.taskQueues.main,
      workflowId: `late-${Date.now()}`,
      args: [inputFor(config, 'source', ['late'])],
    });
    await sleep(3000);
    await late.start();
    const result = await handle.result();
    await recordHistory(temporal.client, handle.workflowId, 'late-target');
    assert.equal(result.late.digest, image.digest);
    assert.equal(await digestWithSkopeo(late, `${repo}:1.0`), image.digest);
    const history = await handle.fetchHistory();
    const copies = activityEvents(history, 'copyImageToRegistry');
    assert.equal(copies.scheduled.length, 1, 'one copy, retried by Temporal rather than rescheduled');
    assert.ok(copies.started[0].activityTaskStartedEventAttributes!.attempt! >= 2, 'it took more than one attempt');
  });

  test('a registry answering 429 with Retry-After is retried when it asks, not sooner', async () => {
    const busy = await startedRegistry('busy');
    const proxy = await startRegistryProxy(busy.url, { refuseFirst: { requests: 1, status: 429, headers: { 'retry-after': '4' } } });
    cleanups.push(busy.stop, proxy.close);
    const { config } = testConfig('busy', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: busy, idc: 'idc-busy', url: proxy.url },
    ]);
    await workersFor(config);
    const handle = await temporal.client.workflow.start(replicateImage, { taskQueue: config.taskQueues.main, workflowId: `busy-${Date.now()}`, args: [inputFor(config, 'source', ['busy'])] });
    const result = await handle.result();
    await recordHistory(temporal.client, handle.workflowId, 'retry-after');
    assert.equal(result.busy.digest, image.digest);
    const copies = activityEvents(await handle.fetchHistory(), 'copyImageToRegistry');
    const [scheduled] = copies.scheduled;
    const [started] = copies.started;
    assert.equal(started.activityTaskStartedEventAttributes!.attempt, 2);
    assert.match(started.activityTaskStartedEventAttributes!.lastFailure!.message!, /head manifest lib\/app:1.0 on busy: HTTP 429/);
    const waitedMs = tsMs(started.eventTime) - tsMs(scheduled.eventTime);
    assert.ok(waitedMs >= 3900, `second attempt after ${waitedMs} ms; the registry asked for 4 s (default backoff: 1 s)`);
  });

  test('cancelling a replication cancels its copies and ends CANCELLED, not FAILED', async () => {
    const down = await testRegistry('down');
    const { config } = testConfig('cancel', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: down, idc: 'idc-down' },
    ]);
    await workersFor(config);
    const handle = await temporal.client.workflow.start(replicateImage, { taskQueue: config.taskQueues.main, workflowId: `cancel-${Date.now()}`, args: [inputFor(config, 'source', ['down'])] });
    await sleep(1500); // the copy is failing against the down target and waiting for its next attempt
    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail('a cancelled replication has no result'),
      (e) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal(err.cause?.name, 'CancelledFailure');
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    await recordHistory(temporal.client, handle.workflowId, 'cancelled');
  });

  test('one byte corrupted on the way to the target fails fast with a digest mismatch and leaves no tag behind', async () => {
    const target = await startedRegistry('target');
    const proxy = await startRegistryProxy(target.url, { corrupt: 'uploads' });
    cleanups.push(target.stop, proxy.close);
    const { config } = testConfig('corrupt', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: target, idc: 'idc-x', url: proxy.url },
    ]);
    await workersFor(config);
    const err = await run(config, 'corrupt', inputFor(config, 'source', ['target'])).then(
      () => assert.fail('the replication should fail'),
      (e) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(err.cause!.message, /target: DigestMismatch: .*DIGEST_INVALID/);
    const direct = registryClient(target);
    assert.equal(await direct.headManifest(repo, '1.0'), null, 'no manifest under the tag');
    await direct.close();
    assert.ok(proxy.uploadedBytes > 0, 'the upload went through the corrupting proxy');
  });

  test('a registry behind Bearer-token auth: the copy works, a wrong password fails fast with a clear message', async () => {
    const dir = tempDir('token');
    const password = 's3cret-token-pw';
    const issuer = await startTokenIssuer(dir, { robot: password });
    const tokenAuth = { token: { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, rootCertBundle: issuer.rootCertBundle } };
    const secured = await startedRegistry('secured', { auth: tokenAuth, username: 'robot', password });
    cleanups.push(secured.stop, issuer.close);

    const good = testConfig('token', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: secured, idc: 'idc-t' },
    ]);
    await workersFor(good.config);
    const result = await run(good.config, 'token', inputFor(good.config, 'source', ['secured']));
    assert.equal(result.secured.digest, image.digest);
    assert.ok(issuer.issued > 0, 'tokens were issued');
    assert.equal(await digestWithSkopeo(secured, `${repo}:1.0`), image.digest);

    const bad = testConfig('token-bad', temporal.address, [
      { registry: source, idc: 'idc-a' },
      { registry: secured, idc: 'idc-t', password: 'wrong-password' },
    ]);
    await workersFor(bad.config);
    const handle = await temporal.client.workflow.start(replicateImage, {
      taskQueue: bad.config.taskQueues.main,
      workflowId: `token-bad-${Date.now()}`,
      args: [inputFor(bad.config, 'source', ['secured'])],
    });
    const err = await handle.result().then(
      () => assert.fail('a wrong password must fail'),
      (e) => e,
    );
    assert.match(err.cause.message, /secured: RegistryAuthError: the token service of secured .* rejected the credentials of user "robot" \(HTTP 401\)/);
    const copies = activityEvents(await handle.fetchHistory(), 'copyImageToRegistry');
    assert.equal(copies.failed[0].activityTaskFailedEventAttributes!.retryState, proto.temporal.api.enums.v1.RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE);
    assert.equal(copies.started[0].activityTaskStartedEventAttributes!.attempt, 1, 'failed on the first attempt');
  });

  test('recorded histories replay without nondeterminism', async () => {
    // Every workflow this file ran, successes and failures alike, replayed against the current workflow code. Other
    // files' may be encrypted with a key this file does not have: the API's (they carry BerthKind), and the children
    // of their distributions (which do not).
    const listed = temporal.client.workflow.list({ query: `WorkflowType = 'replicateImage' AND ExecutionStatus != 'Running' AND BerthKind IS NULL` }).intoHistories();
    const histories = async function* () {
      for await (const h of listed) {
        const input = (h.history as proto.temporal.api.history.v1.IHistory).events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
        if (Buffer.from(input?.metadata?.encoding ?? []).toString() !== 'binary/encrypted') yield h;
      }
    };
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowsPath }, histories())) {
      assert.equal(r.error, undefined, `${r.workflowId}: ${r.error}`);
      replayed++;
    }
    assert.ok(replayed >= 5, `replayed ${replayed} histories`);
  });
});
