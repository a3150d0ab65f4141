// Kill -9 the worker in the middle of a ~300 MB copy, start another: the workflow completes, only the blobs that
// were in flight are sent again (finished blobs are found on the target and not sent again), and the result counts
// every blob the replication put there once, whichever attempt sent it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { replicateImage } from '../workflows/replicate-image.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { idcTaskQueue } from '../config/load.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { activityEvents, recordHistory } from '../testbed/histories.ts';

const workerMain = fileURLToPath(new URL('../workers/main.ts', import.meta.url));
let temporal: TestTemporal;
let source: TestRegistry;
let target: TestRegistry;
let proxy: RegistryProxy;
let image: BuiltImage;
const workers: ManagedProcess[] = [];

/** A worker as its own OS process, as in production, so that it can really be killed. */
async function spawnWorker(configFile: string, env: Record<string, string>): Promise<ManagedProcess> {
  const logFile = join(tempDir('worker'), 'worker.log');
  const worker = spawnManaged('worker', process.execPath, ['--import', 'tsx', workerMain], logFile, { ...process.env, ...env, BERTH_CONFIG: configFile });
  workers.push(worker);
  await waitUntil('berth worker', async () => readFileSync(logFile, 'utf8').includes('berth worker polling'), { timeoutMs: 30_000, process: worker });
  return worker;
}

before(async () => {
  temporal = await connectTestTemporal();
  [source, target] = await Promise.all([startedRegistry('source'), startedRegistry('target')]);
  proxy = await startRegistryProxy(target.url);
  // Ten 30 MiB layers: with two copied at a time, a kill leaves at most two blobs half done.
  image = await buildOciLayout(tempDir('big'), 'big', [{ os: 'linux', architecture: 'amd64', layers: Array.from({ length: 10 }, () => ({ size: 30 << 20 })) }]);
  await pushWithSkopeo(image, source, 'lib/big');
});

after(async () => {
  for (const w of workers) await w.stop();
  await proxy?.close();
  await Promise.all([source?.stop(), target?.stop()]);
  await temporal?.close();
});

test('a worker killed mid-copy is replaced and the copy completes without re-sending finished blobs', async () => {
  const concurrency = 2;
  const { config, file, env } = testConfig(
    'crash',
    temporal.address,
    [
      { registry: source, idc: 'idc-a' },
      { registry: target, idc: 'idc-b', url: proxy.url },
    ],
    { blobConcurrency: concurrency, chunkSizeMiB: 8 },
  );
  const first = await spawnWorker(file, env);
  const handle = await temporal.client.workflow.start(replicateImage, {
    taskQueue: config.taskQueues.main,
    workflowId: `crash-${Date.now()}`,
    args: [{ image: 'lib/big:big', source: { registry: 'source', idc: 'idc-a', taskQueue: idcTaskQueue(config, 'idc-a') }, targets: [{ registry: 'target', idc: 'idc-b', taskQueue: idcTaskQueue(config, 'idc-b') }] }],
  });

  // Kill mid-way through the second pair of blobs (pairs of equal blobs finish together).
  while (proxy.uploadedBytes < image.blobBytes * 0.3) await sleep(20);
  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  const sentBeforeKill = proxy.uploadedBytes;
  assert.ok(sentBeforeKill < image.blobBytes, 'killed before the copy finished');

  await spawnWorker(file, env);
  const result = await handle.result();
  await recordHistory(temporal.client, handle.workflowId, 'worker-crash');

  assert.equal(result.target.digest, image.digest);
  // The target was empty: every blob is the replication's, however many of them the killed attempt finished after
  // its last heartbeat.
  assert.equal(result.target.bytesCopied, image.blobBytes, 'bytesCopied counts every blob the replication put on the target');
  assert.equal(result.target.blobsCopied, 11, 'ten layers and the config');
  assert.equal(result.target.blobsSkipped, 0);
  assert.equal(await digestWithSkopeo(target, 'lib/big:big'), image.digest);
  const sentAgain = proxy.uploadedBytes - image.blobBytes;
  console.log(`killed after ${sentBeforeKill} bytes; sent again after the restart: ${sentAgain} bytes`);
  assert.ok(sentAgain >= 0, 'every blob byte reached the target');
  assert.ok(sentAgain < image.largestBlob * concurrency, `re-sent ${sentAgain} bytes; bound ${image.largestBlob * concurrency}`);
  const started = activityEvents(await handle.fetchHistory(), 'copyImageToRegistry').started[0].activityTaskStartedEventAttributes!;
  assert.ok(started.attempt! >= 2, 'the copy was retried after the worker died');
});
