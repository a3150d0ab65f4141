// Services through the API on real servers: berth.yaml's service in project shop, its image pushed to the master
// registry only, its cluster in the IDC below. A deploy brings the image to the cluster IDC's registry (a
// distributeImage child), resolves it by digest and records the release; rollback redeploys the previous release;
// roles are checked as on every route. The rollout onto machines' engines is in the tests below these.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BerthConfig } from '../config/load.ts';
import { startWorkers, type WorkerSet } from '../workers/run.ts';
import { testApi, type TestApi } from './harness/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from './harness/berth.ts';
import { testClusterName } from './harness/hosts.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo } from './harness/oci-layout.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';
import { workflowOutcome } from './harness/workflows.ts';

let temporal: TestTemporal;
let config: BerthConfig;
let api: TestApi;
let workers: WorkerSet;
let master: TestRegistry;
let below: TestRegistry;
const cluster = testClusterName('svc');

before(async () => {
  temporal = await connectTestTemporal();
  [master, below] = await Promise.all([startedRegistry('svc-master'), startedRegistry('svc-below')]);
  process.env.BERTH_TEST_SVC_KEY = 'unused: the pool has no machines here';
  ({ config } = testConfig('svc', temporal.address, [{ registry: master, idc: 'idc-a' }, { registry: below, idc: 'idc-b', parent: 'idc-a' }], {}, {
    rateCard: { docker: { small: 0.01 } },
    initProfiles: { light: [{ hostname: {} }] },
    clusters: [{ name: cluster, idc: 'idc-b', provider: { kind: 'docker' }, ssh: { privateKey: { env: 'BERTH_TEST_SVC_KEY' } }, pools: [{ name: 'front', instanceType: 'small', initProfile: 'light' }] }],
    projects: [{ name: 'shop', repositories: ['shop/**'], clusters: [cluster] }, { name: 'other', repositories: ['other/**'] }],
    services: [{ name: 'web', project: 'shop', image: 'shop/web', cluster, pool: 'front', replicas: 2, ports: [80], health: { http: { path: '/', port: 80 } } }],
  }));
  workers = await startWorkers(config);
  api = await testApi(config, temporal.client);
  for (const version of ['v1', 'v2']) {
    const image = await buildOciLayout(tempDir('svc-layout'), version, [{ os: 'linux', architecture: 'amd64', layers: [{ size: 4 << 10 }] }]);
    await pushWithSkopeo(image, master, 'shop/web');
  }
});

after(async () => {
  await api?.close();
  await workers?.shutdown();
  await Promise.all([master?.stop(), below?.stop()]);
  await temporal?.close();
});

const deploy = (version: string, token?: string) =>
  api.inject({ method: 'POST', url: '/v1/services/web/deploy', payload: { version }, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });

describe('services through the API', () => {
  test('a deploy brings the image to the cluster IDC registry, by digest, and records the release', async () => {
    const developer = await api.userWith('shop-dev', { shop: 'developer' });
    const res = await deploy('v1', developer);
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().workflowId, 'deploy:web');
    const done = await workflowOutcome(temporal.client, 'deploy:web', 'deploy-service-empty-pool');
    assert.ok(done.ok, done.ok ? '' : done.error);
    const digest = await digestWithSkopeo(master, 'shop/web:v1');
    // Distributed from the master: the IDC below holds the very image.
    assert.equal(await digestWithSkopeo(below, 'shop/web:v1'), digest);
    assert.deepEqual(done.result, { version: 'v1', digest, updated: [], unchanged: [] });
    const [release] = (await api.inject({ url: '/v1/services/web', headers: { authorization: `Bearer ${developer}` } })).json().releases;
    assert.deepEqual([release.version, release.digest, release.requestedBy, release.reason, release.outcome], ['v1', digest, 'shop-dev', 'deploy', 'succeeded']);
    assert.ok(release.finishedAt >= release.startedAt);
  });

  test('rollback redeploys the release before the last successful one', async () => {
    assert.equal((await deploy('v2')).statusCode, 202);
    assert.ok((await workflowOutcome(temporal.client, 'deploy:web')).ok);
    const res = await api.inject({ method: 'POST', url: '/v1/services/web/rollback' });
    assert.equal(res.statusCode, 202, res.body);
    assert.ok((await workflowOutcome(temporal.client, 'deploy:web')).ok);
    const releases = (await api.inject({ url: '/v1/services/web' })).json().releases;
    assert.deepEqual(
      releases.map((r: { version: string; reason: string; outcome: string }) => [r.version, r.reason, r.outcome]),
      [['v1', 'rollback', 'succeeded'], ['v2', 'deploy', 'succeeded'], ['v1', 'deploy', 'succeeded']],
    );
  });

  test("another project's developer gets 403, a guest cannot deploy, a bad version is 400 naming it; nothing starts", async () => {
    const before = (await api.inject({ url: '/v1/services/web' })).json().releases.length;
    const stranger = await api.userWith('other-dev', { other: 'developer' });
    const guest = await api.userWith('shop-guest', { shop: 'guest' });
    const refused = await deploy('v2', stranger);
    assert.equal(refused.statusCode, 403, refused.body);
    assert.match(refused.json().message, /other-dev may not POST \/v1\/services\/:name\/deploy: it needs role developer or higher in project shop/);
    assert.equal((await api.inject({ url: '/v1/services/web', headers: { authorization: `Bearer ${stranger}` } })).statusCode, 403);
    assert.equal((await deploy('v2', guest)).statusCode, 403);
    assert.equal((await api.inject({ method: 'POST', url: '/v1/services/web/rollback', headers: { authorization: `Bearer ${stranger}` } })).statusCode, 403);
    const bad = await deploy('v2:latest');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().issues[0].path, 'version');
    // The list shows a user only their projects' services.
    assert.deepEqual((await api.inject({ url: '/v1/services', headers: { authorization: `Bearer ${stranger}` } })).json().services, []);
    assert.deepEqual((await api.inject({ url: '/v1/services', headers: { authorization: `Bearer ${guest}` } })).json().services.map((s: { name: string }) => s.name), ['web']);
    assert.equal((await api.inject({ url: '/v1/services/web' })).json().releases.length, before);
    assert.equal((await api.inject({ method: 'POST', url: '/v1/services/nope/deploy', payload: { version: 'v1' } })).statusCode, 404);
    const pause = await api.inject({ method: 'POST', url: '/v1/services/web/pause' });
    assert.equal(pause.statusCode, 409);
    assert.match(pause.json().message, /no deploy of web is running/);
  });
});
