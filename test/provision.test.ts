// Provisioning end to end through the API: real containers from the docker provider, real sshd, the init profile
// over SSH, the inventory in SQLite; the saga's compensation, pool scaling with its concurrency limit, the budget.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { reservedTags } from '../activities/cloud/provider.ts';
import type { BerthConfig } from '../config/load.ts';
import { startWorkers, type WorkerSet } from '../workers/run.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { testConfig, testRegistry } from '../testbed/berth.ts';
import { hostEngine, removeCluster, sshKeyPair, testClusterName } from '../testbed/hosts.ts';
import { workflowOutcome } from './harness/workflows.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let config: BerthConfig;
let api: TestApi;
let workers: WorkerSet;
const cluster = testClusterName('demo');
const tight = testClusterName('tight');

before(async () => {
  temporal = await connectTestTemporal();
  const engine = await hostEngine();
  process.env.BERTH_TEST_SSH_KEY = sshKeyPair().privateKey;
  const provider = { kind: 'docker', socketPath: engine.socketPath, image: engine.image.tag };
  const ssh = { user: 'root', privateKey: { env: 'BERTH_TEST_SSH_KEY' } };
  ({ config } = testConfig(
    'provision',
    temporal.address,
    [{ registry: await testRegistry('prov-reg'), idc: 'idc-a' }],
    {},
    {
      rateCard: { docker: { small: 0.02, huge: 1 } },
      // A light profile keeps five machines quick; test/hosts.test.ts runs the full `base` profile.
      initProfiles: {
        light: [{ hostname: {} }, { sysctl: { 'net.core.somaxconn': 4096 } }],
        broken: [{ hostname: {} }, { script: { name: 'always fails', check: 'false', run: 'echo disk full >&2; exit 3' } }],
        slow: [{ script: { name: 'takes long', check: 'false', run: 'sleep 60' } }],
      },
      clusters: [
        {
          name: cluster,
          idc: 'idc-a',
          provider,
          ssh,
          pools: [
            { name: 'web', instanceType: 'small', initProfile: 'light', maxConcurrentCreates: 2 },
            { name: 'bad', instanceType: 'small', initProfile: 'broken' },
            { name: 'slow', instanceType: 'small', initProfile: 'slow' },
          ],
        },
        { name: tight, idc: 'idc-a', provider, ssh, monthlyBudget: 500, pools: [{ name: 'gpu', instanceType: 'huge', initProfile: 'light' }] },
      ],
      projects: [{ name: 'ops', clusters: [cluster, tight] }],
    },
  ));
  workers = await startWorkers(config);
  api = await testApi(config, temporal.client);
});

after(async () => {
  await api?.close();
  await workers?.shutdown();
  const { docker } = await hostEngine();
  for (const c of [cluster, tight]) await removeCluster(docker, c);
  await temporal?.close();
});

const finish = (workflowId: string, fixture?: string) => workflowOutcome(temporal.client, workflowId, fixture);
const containers = async (pool?: string) => (await (await hostEngine()).docker.listContainers({ all: true, filters: { label: [`${reservedTags.cluster}=${cluster}`, ...(pool ? [`${reservedTags.pool}=${pool}`] : [])] } })).length;
const machines = async (query: string) => (await api.inject({ url: `/v1/machines?cluster=${cluster}${query}` })).json().machines;

describe('provisioning', () => {
  test('a machine: created, SSH host key pinned, initialized, ready in the inventory', async () => {
    const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool: 'web', name: 'solo' } });
    assert.equal(res.statusCode, 202, res.body);
    const [w] = res.json().workflows;
    assert.equal(w.workflowId, `machine:${cluster}/web/solo`);
    const done = await finish(w.workflowId, 'provision-machine');
    assert.ok(done.ok, done.ok ? '' : done.error);
    assert.deepEqual(
      done.result.steps.map((s: { step: string; status: string }) => [s.step, s.status]),
      [
        ['hostname', 'changed'],
        ['sysctl', 'changed'],
      ],
    );
    const [m] = await machines('&pool=web');
    assert.deepEqual([m.name, m.state, m.provider], ['solo', 'ready', 'docker']);
    assert.match(m.address, /^127\.1\.\d+\.\d+$/);
    assert.equal(m.hostKeyFingerprint, done.result.hostKeyFingerprint);
    assert.match(m.hostKeyFingerprint, /^SHA256:/);

    const gone = await api.inject({ method: 'DELETE', url: `/v1/machines/${m.id}` });
    assert.equal(gone.statusCode, 202);
    assert.ok((await finish(gone.json().workflowId, 'decommission-machine')).ok);
    assert.equal(await containers('web'), 0);
    assert.equal((await machines('&state=destroyed'))[0].id, m.id);
  });

  test('an init step that fails: the machine is destroyed, and the inventory says why', async () => {
    const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool: 'bad' } });
    const done = await finish(res.json().workflows[0].workflowId, 'provision-compensated');
    assert.equal(done.ok, false);
    assert.match(done.ok ? '' : done.error, /bad-1: .*always fails.*disk full; [0-9a-f]{64} was destroyed at the provider$/);
    const [m] = await machines('&pool=bad');
    assert.equal(m.state, 'destroyed');
    assert.match(m.failureReason, /InitStepFailed: .*always fails.*disk full/);
    assert.equal(await containers('bad'), 0, 'no container left behind');
  });

  test('cancelling a provisioning compensates: the machine is destroyed and the inventory says it was cancelled', async () => {
    const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool: 'slow' } });
    const { workflowId } = res.json().workflows[0];
    const url = `/v1/workflows/${encodeURIComponent(workflowId)}`;
    for (let i = 0; i < 300 && (await api.inject({ url })).json().progress?.['slow-1']?.status !== 'initializing'; i++) await new Promise((r) => setTimeout(r, 200));
    assert.equal((await api.inject({ method: 'DELETE', url })).statusCode, 202);
    const done = await finish(workflowId);
    assert.equal(done.ok, false);
    assert.equal((await temporal.client.workflow.getHandle(workflowId).describe()).status.name, 'CANCELLED');
    const [m] = await machines('&pool=slow');
    assert.deepEqual([m.state, m.failureReason], ['destroyed', 'provisioning was cancelled']);
    assert.equal(await containers('slow'), 0);
  });

  test('scalePool: up to 5 with never more than 2 creates in flight, then down to 1', async () => {
    const up = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/web/scale`, payload: { desired: 5 } });
    assert.equal(up.statusCode, 202, up.body);
    // While it runs, the same request joins it and another target is refused, naming the one under way.
    const same = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/web/scale`, payload: { desired: 5 } });
    assert.deepEqual([same.statusCode, same.json().runId], [202, up.json().runId]);
    const other = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/web/scale`, payload: { desired: 3 } });
    assert.equal(other.statusCode, 409, other.body);
    assert.match(other.json().message, new RegExp(`^pool ${cluster}/web is being scaled to 5 \\(scale:${cluster}/web\\): wait for it to finish or cancel it, then scale to 3$`));
    assert.deepEqual([other.json().running.desired, other.json().running.runId], [5, up.json().runId]);
    const scaled = await finish(up.json().workflowId, 'scale-pool-up');
    assert.ok(scaled.ok, scaled.ok ? '' : scaled.error);
    assert.equal(scaled.result.created.length, 5);
    assert.equal(await containers('web'), 5);

    // The scale's history says how many provisioning children ran at once.
    const events = (await temporal.client.workflow.getHandle(up.json().workflowId).fetchHistory()).events ?? [];
    let inFlight = 0;
    let most = 0;
    for (const e of events) {
      if (e.startChildWorkflowExecutionInitiatedEventAttributes) most = Math.max(most, ++inFlight);
      if (e.childWorkflowExecutionCompletedEventAttributes || e.childWorkflowExecutionFailedEventAttributes) inFlight--;
    }
    assert.equal(most, 2, 'two at a time, as the pool says');

    const down = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/web/scale`, payload: { desired: 1 } });
    const shrunk = await finish(down.json().workflowId);
    assert.ok(shrunk.ok);
    assert.equal(shrunk.result.removed.length, 4);
    const left = await machines('&pool=web&state=ready');
    assert.equal(left.length, 1);
    const created = (await machines('&pool=web'))
      .filter((m: { name: string }) => m.name !== 'solo')
      .map((m: { createdAt: string }) => m.createdAt)
      .sort();
    assert.equal(left[0].createdAt, created[0], 'the oldest machine stays; the newest go first');
    assert.equal(await containers('web'), 1);
  });

  test('the budget refuses a machine before it is created, saying by how much it would be exceeded', async () => {
    const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster: tight, pool: 'gpu' } });
    const done = await finish(res.json().workflows[0].workflowId);
    assert.equal(done.ok, false);
    assert.match(done.ok ? '' : done.error, new RegExp(`monthly budget of cluster ${tight} \\(500\\.00\\) would be exceeded by 230\\.00`));
    const costs = (await api.inject({ url: '/v1/costs?groupBy=pool' })).json();
    assert.equal(costs.groupBy, 'pool');
    assert.ok(
      costs.costs.some((c: { cluster: string; pool: string; cost: number }) => c.cluster === cluster && c.pool === 'web' && c.cost > 0),
      JSON.stringify(costs),
    );
  });

  test('bad input: 400 naming the field, 404 for an unknown cluster or pool, nothing started', async () => {
    const before = (await temporal.client.workflow.count(`TaskQueue = '${config.taskQueues.main}'`)).count;
    const cases: [object, number, string][] = [
      [{ cluster, pool: 'web', count: 0 }, 400, 'count'],
      [{ cluster, pool: 'web', count: 2, name: 'x' }, 400, 'count'],
      [{ cluster: 'Nope!', pool: 'web' }, 400, 'cluster'],
      [{ cluster: 'nope', pool: 'web' }, 404, 'cluster'],
      [{ cluster, pool: 'nope' }, 404, 'pool'],
    ];
    for (const [body, status, path] of cases) {
      const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: body });
      assert.equal(res.statusCode, status, res.body);
      assert.ok(status === 404 ? res.json().path === path : res.json().issues.some((i: { path: string }) => i.path === path), res.body);
    }
    assert.equal((await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/web/scale`, payload: { desired: -1 } })).statusCode, 400);
    assert.equal((await temporal.client.workflow.count(`TaskQueue = '${config.taskQueues.main}'`)).count, before);
  });
});
