import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { BerthConfig } from '../config/load.ts';
import { startWorkers, type WorkerSet } from '../workers/run.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';
import { startedRegistry, tempDir, testConfig, testRegistry, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';

let temporal: TestTemporal;
let config: BerthConfig;
let api: TestApi;
let workers: WorkerSet;
let source: TestRegistry;
let late: TestRegistry;
let image: BuiltImage;
// A long name, as real ones are: the workflow ID derived from it must still work in URLs.
const repository = 'platform/infrastructure/networking/edge-gateway-service-canary-eu-west-1';
const ref = `${repository}:2.1.0-rc.1`;

/** Workflows this test's API has started, as Temporal's visibility sees them. */
async function startedWorkflows(): Promise<number> {
  return (await temporal.client.workflow.count(`TaskQueue = '${config.taskQueues.main}'`)).count;
}

before(async () => {
  temporal = await connectTestTemporal();
  source = await startedRegistry('source');
  late = await testRegistry('late');
  ({ config } = testConfig('api', temporal.address, [
    { registry: source, idc: 'idc-a' },
    { registry: late, idc: 'idc-b' },
  ]));
  image = await buildOciLayout(tempDir('layout'), '2.1.0-rc.1', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 1 << 20, gzip: true }] }]);
  await pushWithSkopeo(image, source, repository);
  workers = await startWorkers(config);
  api = await testApi(config, temporal.client);
});

after(async () => {
  await api?.close();
  await workers?.shutdown();
  await Promise.all([source?.stop(), late?.stop()]);
  await temporal?.close();
});

const post = (body: unknown) => api.inject({ method: 'POST', url: '/v1/replications', payload: body as object });

describe('POST /v1/replications', () => {
  test('a malformed body answers 400 naming each bad field, and starts nothing', async () => {
    const cases: [unknown, string[]][] = [
      [{}, ['image', 'source', 'targets']],
      [{ image: 'Lib/App:1.0', source: 'idc-a', targets: ['idc-b'] }, ['image']],
      [{ image: ref, source: 'idc-a', targets: [] }, ['targets']],
      [{ image: ref, source: 'idc-a', targets: ['idc-b', 7] }, ['targets[1]']],
      [{ image: ref, source: 'idc-a', targets: ['idc-b'], force: true }, ['']],
      [{ image: ref, source: 'idc-a', targets: ['idc-a'] }, ['targets[0]']],
    ];
    for (const [body, paths] of cases) {
      const res = await post(body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.deepEqual(
        res.json().issues.map((i: { path: string }) => i.path),
        paths,
        JSON.stringify(res.json()),
      );
    }
    const notJson = await api.inject({ method: 'POST', url: '/v1/replications', headers: { 'content-type': 'application/json' }, payload: '{"image":' });
    assert.equal(notJson.statusCode, 400);
    assert.equal(await startedWorkflows(), 0);
  });

  test('an unknown IDC or registry answers 404 naming it, and starts nothing', async () => {
    const res = await post({ image: ref, source: 'idc-a', targets: ['idc-b', 'idc-mars'] });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { error: 'not found', message: 'unknown IDC or registry "idc-mars"', path: 'targets[1]' });
    assert.equal((await post({ image: ref, source: 'nowhere', targets: ['idc-b'] })).statusCode, 404);
    assert.equal(await startedWorkflows(), 0);
  });

  test('a valid request answers 202; the same request again joins the running workflow; the status shows the result', async () => {
    // The target is down, so the workflow is still running when the request is repeated.
    const body = { image: ref, source: 'idc-a', targets: ['idc-b'] };
    const first = await post(body);
    assert.equal(first.statusCode, 202, first.body);
    const { workflowId, runId, uiUrl, statusUrl } = first.json();
    assert.ok(workflowId.length > 100, 'a workflow ID longer than a URL parameter may be by default');
    assert.match(uiUrl, /^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\//);
    const again = await post(body);
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().runId, runId, 'joined, not started twice');

    const running = (await api.inject({ url: statusUrl })).json();
    assert.equal(running.status, 'RUNNING');
    assert.equal(running.progress.late.status, 'copying');

    await late.start();
    let status;
    for (let i = 0; i < 300; i++) {
      status = (await api.inject({ url: `/v1/workflows/${encodeURIComponent(workflowId)}` })).json();
      if (status.status !== 'RUNNING') break;
      await sleep(100);
    }
    assert.equal(status.status, 'COMPLETED', JSON.stringify(status));
    assert.equal(status.result.late.digest, image.digest);
    assert.equal(status.progress.late.status, 'done');
    assert.equal(await digestWithSkopeo(late, ref), image.digest);
    assert.equal(await startedWorkflows(), 1);

    // Search attributes: the list filters by kind and status through Temporal's visibility (which lags a moment).
    let listed: { workflowId: string; kind: string; status: string }[] = [];
    for (let i = 0; i < 50 && !listed.some((w) => w.workflowId === workflowId); i++) {
      listed = (await api.inject({ url: '/v1/workflows?kind=replication&status=Completed' })).json().workflows;
      await sleep(100);
    }
    assert.deepEqual(
      listed.map((w) => [w.workflowId, w.kind, w.status]),
      [[workflowId, 'replication', 'COMPLETED']],
    );
    assert.deepEqual((await api.inject({ url: '/v1/workflows?kind=distribution' })).json().workflows, []);
  });

  test('with Temporal out of reach, a request answers 503 saying so', async () => {
    // The SDK retries an unreachable server for about 20 s by default; two attempts keep this test short.
    const interceptors = [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 2 }))];
    const unreachable = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 1000, interceptors }) });
    const offline = await testApi({ ...config, temporal: { ...config.temporal, address: '127.0.0.1:1' } }, unreachable);
    try {
      const res = await offline.inject({ method: 'POST', url: '/v1/replications', payload: { image: ref, source: 'idc-a', targets: ['idc-b'] } });
      assert.equal(res.statusCode, 503, res.body);
      assert.match(res.json().message, /^Temporal at 127\.0\.0\.1:1 did not answer/);
    } finally {
      await offline.close();
    }
  });

  test('an unknown workflow answers 404', async () => {
    const res = await api.inject({ url: '/v1/workflows/no-such-workflow' });
    assert.equal(res.statusCode, 404);
  });
});

describe('POST /v1/distributions', () => {
  test('bad input answers 400 or 404 naming the field, and starts nothing', async () => {
    const cases: [unknown, number, string][] = [
      [{}, 400, 'image'],
      [{ image: ref, from: 'idc-a', to: 'idc-b' }, 400, ''],
      // This test's config has two root IDCs: which one to start from must be said.
      [{ image: ref }, 400, 'from'],
      [{ image: ref, from: 'idc-mars' }, 404, 'from'],
      // idc-a has no child IDC and no second registry.
      [{ image: ref, from: 'idc-a' }, 400, 'from'],
    ];
    const before = await startedWorkflows();
    for (const [body, status, path] of cases) {
      const res = await api.inject({ method: 'POST', url: '/v1/distributions', payload: body as object });
      assert.equal(res.statusCode, status, res.body);
      const paths = status === 400 ? res.json().issues.map((i: { path: string }) => i.path) : [res.json().path];
      assert.ok(paths.includes(path), `${JSON.stringify(body)} -> ${res.body}`);
    }
    assert.equal(await startedWorkflows(), before);
  });
});
