// The production process layout (docker-compose.yml) on this machine: the API, the main worker (from the prebuilt
// workflow bundle) and per-IDC workers, each its own OS process. A replication asked for over HTTP runs each
// activity on its IDC's queue; then a queue is served by two workers, and the one copying is stopped (SIGTERM:
// it cancels the copy within its grace period and exits) or killed (SIGKILL): the other one finishes the copy.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { firstAdminTokenFile } from '../api/auth/bootstrap.ts';
import { idcTaskQueue, type BerthConfig } from '../config/load.ts';
import { freePort, spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { metricsRoute } from '../metrics/exposition.ts';
import { recordCopy } from '../metrics/registry.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { activityEvents } from '../testbed/histories.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

const script = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const graceSeconds = 2;
const heartbeatTimeoutMs = 20_000;

let temporal: TestTemporal;
let source: TestRegistry;
let target: TestRegistry;
let slowLink: RegistryProxy;
let small: BuiltImage;
let big: BuiltImage[];
let config: BerthConfig;
let configFile: string;
let configEnv: Record<string, string>;
let bundle: string;
let apiUrl: string;
/** The first platform admin's token, which the API hands over once, on its first start. */
let token: string;
const processes: ManagedProcess[] = [];
const workers: Record<string, ManagedProcess & { metricsPort: number }> = {};

/** A berth process as in production: its own node, config from BERTH_CONFIG; ready when its log says `ready`. */
async function spawnBerth(name: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<ManagedProcess> {
  const logFile = join(tempDir(name), `${name}.log`);
  const proc = spawnManaged(name, process.execPath, ['--import', 'tsx', ...args], logFile, { ...process.env, ...configEnv, ...env, BERTH_CONFIG: configFile });
  processes.push(proc);
  await waitUntil(name, async () => readFileSync(logFile, 'utf8').includes(ready), { timeoutMs: 60_000, process: proc });
  return proc;
}

async function spawnWorker(name: string, args: string[], env: Record<string, string> = {}) {
  const metricsPort = await freePort();
  const proc = await spawnBerth(name, [script('../workers/main.ts'), ...args], 'berth worker polling', { BERTH_METRICS_PORT: String(metricsPort), ...env });
  workers[name] = Object.assign(proc, { metricsPort });
  return workers[name];
}

const identityOf = (proc: ManagedProcess) => `${proc.child.pid}@`;

async function replicate(image: string): Promise<string> {
  const res = await fetch(`${apiUrl}/v1/replications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ image, source: 'idc-a', targets: ['idc-b'] }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { workflowId: string }).workflowId;
}

/** The workflow's status as the API reports it, once it is closed. */
async function closedStatus(workflowId: string, timeoutMs: number): Promise<{ status: string; result?: Record<string, { digest: string }> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${apiUrl}/v1/workflows/${encodeURIComponent(workflowId)}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { status: string };
    if (body.status !== 'RUNNING') return body;
    assert.ok(Date.now() < deadline, `${workflowId} still running after ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** The worker process running the workflow's copy, once the copy has moved some bytes. */
async function copyingWorker(workflowId: string, candidates: (ManagedProcess & { metricsPort: number })[]) {
  const handle = temporal.client.workflow.getHandle(workflowId);
  for (;;) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const copy = pending.find((a) => a.activityType?.name === 'copyImageToRegistry' && a.lastWorkerIdentity);
    const worker = copy && candidates.find((w) => copy.lastWorkerIdentity!.startsWith(identityOf(w)));
    if (worker && slowLink.downloadedBytes > 0) return worker;
    await sleep(100);
  }
}

before(async () => {
  temporal = await connectTestTemporal();
  [source, target] = await Promise.all([startedRegistry('source'), startedRegistry('target')]);
  // Every copy out of idc-a reads through a slow link, so that a 48 MiB copy lasts a few seconds.
  slowLink = await startRegistryProxy(source.url, { downloadBytesPerSecond: 6 << 20 });
  small = await buildOciLayout(tempDir('small'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 256 << 10, gzip: true }] }]);
  big = await Promise.all(['one', 'two'].map((tag) => buildOciLayout(tempDir(`big-${tag}`), tag, [{ os: 'linux', architecture: 'amd64', layers: Array.from({ length: 4 }, () => ({ size: 12 << 20 })) }])));
  await pushWithSkopeo(small, source, 'lib/small');
  for (const image of big) await pushWithSkopeo(image, source, 'lib/big');

  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  ({
    config,
    file: configFile,
    env: configEnv,
  } = testConfig(
    'procs',
    temporal.address,
    [
      { registry: source, idc: 'idc-a', url: slowLink.url },
      { registry: target, idc: 'idc-b' },
    ],
    { blobConcurrency: 2, chunkSizeMiB: 8 },
    { api: { host: '127.0.0.1', port: apiPort }, workers: { shutdownGraceSeconds: graceSeconds }, metrics: { host: '127.0.0.1' } },
  ));
  // The workflow code as the image builds it.
  bundle = join(tempDir('bundle'), 'workflow-bundle.js');
  const bundler = spawnManaged('bundle', process.execPath, ['--import', 'tsx', script('../workers/bundle.ts'), bundle], `${bundle}.log`);
  const [code] = await once(bundler.child, 'exit');
  assert.equal(code, 0, readFileSync(`${bundle}.log`, 'utf8'));

  const [api] = await Promise.all([
    spawnBerth('api', [script('../api/main.ts')], 'berth api on'),
    spawnWorker('main', ['--no-idc'], { BERTH_WORKFLOW_BUNDLE: bundle }),
    // At DEBUG the SDK logs each activity's start and end: the JSON lines this test reads.
    spawnWorker('idc-a', ['--idc', 'idc-a', '--no-main'], { BERTH_LOG_LEVEL: 'DEBUG' }),
    spawnWorker('idc-b-1', ['--idc', 'idc-b', '--no-main']),
  ]);
  // Its stdout is a log file, not a terminal: the API wrote the token to a file and logged where.
  assert.ok(readFileSync(api.logFile, 'utf8').includes(`its token is in ${firstAdminTokenFile(config)}`));
  token = readFileSync(firstAdminTokenFile(config), 'utf8').trim();
});

after(async () => {
  for (const p of processes.reverse()) await p.stop();
  await slowLink?.close();
  await Promise.all([source?.stop(), target?.stop()]);
  await temporal?.close();
});

describe('api, main worker and per-IDC workers as separate processes', () => {
  test('the main worker runs the prebuilt bundle; a replication over HTTP resolves on idc-a and copies on idc-b', async () => {
    assert.match(readFileSync(workers.main.logFile, 'utf8'), new RegExp(`workflows from ${bundle}`));
    const workflowId = await replicate('lib/small:1.0');
    const closed = await closedStatus(workflowId, 60_000);
    assert.equal(closed.status, 'COMPLETED');
    assert.equal(closed.result!.target.digest, small.digest);
    assert.equal(await digestWithSkopeo(target, 'lib/small:1.0'), small.digest);

    const history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
    for (const [activity, idc, worker] of [
      ['resolveImage', 'idc-a', workers['idc-a']],
      ['copyImageToRegistry', 'idc-b', workers['idc-b-1']],
    ] as const) {
      const { scheduled, started } = activityEvents(history, activity);
      assert.equal(scheduled[0].activityTaskScheduledEventAttributes!.taskQueue!.name, idcTaskQueue(config, idc), `${activity} on ${idc}'s queue`);
      assert.ok(started[0].activityTaskStartedEventAttributes!.identity!.startsWith(identityOf(worker)), `${activity} ran in the ${idc} worker process`);
    }
    const workflowTasks = (history.events ?? []).filter((e) => e.workflowTaskStartedEventAttributes);
    assert.ok(
      workflowTasks.every((e) => e.workflowTaskStartedEventAttributes!.identity!.startsWith(identityOf(workers.main))),
      'workflow tasks ran in the main worker',
    );

    // The idc-a worker's log: JSON lines that carry the workflow and the activity they belong to.
    const lines = readFileSync(workers['idc-a'].logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const done = lines.find((l) => l.msg === 'Activity completed' && l.workflowId === workflowId);
    assert.ok(done, 'a JSON line for the resolve activity');
    assert.equal(done.activityType, 'resolveImage');
    assert.equal(done.taskQueue, idcTaskQueue(config, 'idc-a'));
    assert.ok(done.activityId && done.workflowRunId, 'activity and run IDs');

    // Each worker process is a scrape target: berth's metrics and the Temporal SDK's on one /metrics.
    const metrics = await (await fetch(`http://127.0.0.1:${workers['idc-b-1'].metricsPort}/metrics`)).text();
    assert.match(metrics, /^# TYPE berth_replicated_bytes_total counter$/m);
    assert.match(metrics, /^process_resident_memory_bytes \d+/m);
    assert.match(metrics, new RegExp(`^temporal_activity_execution_latency\\w*\\{.*task_queue="${idcTaskQueue(config, 'idc-b')}"`, 'm'));
    assert.equal((await fetch(`http://127.0.0.1:${workers['idc-b-1'].metricsPort}/healthz`)).status, 200);
  });

  test('SIGTERM to the worker copying: it cancels the copy within its grace period and exits; the other worker finishes it', async () => {
    await spawnWorker('idc-b-2', ['--idc', 'idc-b', '--no-main']);
    const pair = [workers['idc-b-1'], workers['idc-b-2']];
    const workflowId = await replicate('lib/big:one');
    const copying = await copyingWorker(workflowId, pair);
    const other = pair.find((w) => w !== copying)!;
    const stoppedAt = Date.now();
    copying.child.kill('SIGTERM');
    const [code] = await once(copying.child, 'exit');
    const stopMs = Date.now() - stoppedAt;
    assert.equal(code, 0, `a clean exit; see ${copying.logFile}`);
    assert.ok(stopMs < (graceSeconds + 5) * 1000, `stopped in ${stopMs} ms (grace ${graceSeconds} s)`);
    assert.match(readFileSync(copying.logFile, 'utf8'), /SIGTERM: draining/);

    const closed = await closedStatus(workflowId, 60_000);
    assert.equal(closed.status, 'COMPLETED');
    assert.equal(await digestWithSkopeo(target, 'lib/big:one'), big[0].digest);
    const started = activityEvents(await temporal.client.workflow.getHandle(workflowId).fetchHistory(), 'copyImageToRegistry').started[0];
    const attrs = started.activityTaskStartedEventAttributes!;
    assert.ok(attrs.identity!.startsWith(identityOf(other)), 'the last attempt ran on the other worker');
    assert.ok(attrs.attempt! >= 2, 'the stopped attempt failed and was retried');
    // The cancelled attempt reported its failure: the retry did not wait for the heartbeat timeout.
    const retriedAfterMs = Number(started.eventTime!.seconds) * 1000 - stoppedAt;
    console.log(`SIGTERM: the worker exited after ${stopMs} ms; the copy was retried on the other ${retriedAfterMs} ms after the signal`);
    assert.ok(retriedAfterMs < heartbeatTimeoutMs, `retried ${retriedAfterMs} ms after SIGTERM`);
  });

  test('SIGKILL to the worker copying: after the heartbeat timeout the other worker finishes the copy', async () => {
    await spawnWorker('idc-b-3', ['--idc', 'idc-b', '--no-main']);
    const pair = [workers['idc-b-3'], ...[workers['idc-b-1'], workers['idc-b-2']].filter((w) => w.child.exitCode === null)];
    const workflowId = await replicate('lib/big:two');
    const copying = await copyingWorker(workflowId, pair);
    copying.child.kill('SIGKILL');
    await once(copying.child, 'exit');

    const closed = await closedStatus(workflowId, heartbeatTimeoutMs + 60_000);
    assert.equal(closed.status, 'COMPLETED');
    assert.equal(await digestWithSkopeo(target, 'lib/big:two'), big[1].digest);
    const attrs = activityEvents(await temporal.client.workflow.getHandle(workflowId).fetchHistory(), 'copyImageToRegistry').started[0].activityTaskStartedEventAttributes!;
    assert.ok(attrs.identity!.startsWith(identityOf(pair.find((w) => w !== copying)!)), 'the last attempt ran on the surviving worker');
    assert.ok(attrs.attempt! >= 2, 'the killed attempt was retried');
  });

  test("the API's /metrics route serves berth's counters in Prometheus text", async () => {
    const app = Fastify();
    metricsRoute(app);
    recordCopy('registry-a->registry-b', { bytesCopied: 1024, blobsCopied: 2, blobsSkipped: 3 });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.match(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /^berth_replicated_bytes_total\{link="registry-a->registry-b"\} 1024$/m);
    assert.match(res.body, /^berth_blobs_skipped_total\{link="registry-a->registry-b"\} 3$/m);
    await app.close();
  });
});
