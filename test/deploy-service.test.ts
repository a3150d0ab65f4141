// Services through the API on real servers: berth.yaml's service in project shop, its image pushed to the master
// registry only, its cluster in the IDC below. A deploy brings the image to the cluster IDC's registry (a
// distributeImage child), resolves it by digest and records the release; rollback redeploys the previous release;
// roles are checked as on every route. Then the pool gets 3 real machines (docker provider, an engine inside each,
// started by the docker init step) and the service 2 replicas on each: rollouts, a failed health check rolled back,
// a worker killed mid-rollout. The workers run as a process of their own, so that one can really be killed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { machineContext } from '../activities/machine-context.ts';
import { machineEngines, type WithMachineEngine } from '../activities/machine-engine/connect.ts';
import { serviceContainers } from '../activities/services/engine.ts';
import type { BerthConfig } from '../config/load.ts';
import type { ServiceContainer } from '../contracts/services.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { hostEngine, removeCluster, sshKeyPair, testClusterName } from '../testbed/hosts.ts';
import { digestWithSkopeo } from '../testbed/oci-layout.ts';
import { pushServiceImage, serviceImage, servicePort, serviceClusterConfig } from '../testbed/service-image.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';
import { eventually, workflowOutcome } from './harness/workflows.ts';

let temporal: TestTemporal;
let config: BerthConfig;
let api: TestApi;
let worker: ManagedProcess;
let configFile: string;
let configEnv: Record<string, string>;
let master: TestRegistry;
let below: TestRegistry;
const cluster = testClusterName('svc');

before(async () => {
  temporal = await connectTestTemporal();
  [master, below] = await Promise.all([startedRegistry('svc-master'), startedRegistry('svc-below')]);
  process.env.BERTH_TEST_SVC_KEY = sshKeyPair().privateKey;
  ({
    config,
    file: configFile,
    env: configEnv,
  } = testConfig(
    'svc',
    temporal.address,
    [
      { registry: master, idc: 'idc-a' },
      { registry: below, idc: 'idc-b', parent: 'idc-a' },
    ],
    {},
    {
      ...(await serviceClusterConfig(cluster, 'idc-b', 'BERTH_TEST_SVC_KEY', below.port, 3)),
      projects: [
        { name: 'shop', repositories: ['shop/**'], clusters: [cluster] },
        { name: 'other', repositories: ['other/**'] },
      ],
      services: [
        {
          name: 'web',
          project: 'shop',
          image: 'shop/web',
          cluster,
          pool: 'front',
          replicas: 2,
          ports: [servicePort],
          maxUnavailable: 1,
          health: { http: { path: '/healthz', port: servicePort }, interval: '500ms', timeout: '1s', retries: 10 },
        },
      ],
    },
  ));
  worker = await spawnWorker();
  api = await testApi(config, temporal.client);
  // Runnable images: the pool's machines, once created, are given the service's current release.
  for (const version of ['v1', 'v2']) await pushServiceImage(registryClient(master), await serviceImage(version), 'shop/web');
});

after(async () => {
  await api?.close();
  await worker?.stop();
  await removeCluster((await hostEngine()).docker, cluster);
  await Promise.all([master?.stop(), below?.stop()]);
  await temporal?.close();
});

const workerMain = fileURLToPath(new URL('../workers/main.ts', import.meta.url));

/** berth's workers as their own OS process, as in production, so that they can really be killed. */
async function spawnWorker(): Promise<ManagedProcess> {
  const logFile = join(tempDir('svc-worker'), 'worker.log');
  const w = spawnManaged('worker', process.execPath, ['--import', 'tsx', workerMain], logFile, { ...process.env, ...configEnv, BERTH_CONFIG: configFile });
  await waitUntil('berth worker', async () => readFileSync(logFile, 'utf8').includes('berth worker polling'), { timeoutMs: 60_000, process: w });
  return w;
}

const deploy = (version: string, token?: string) => api.inject({ method: 'POST', url: '/v1/services/web/deploy', payload: { version }, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });

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
      [
        ['v1', 'rollback', 'succeeded'],
        ['v2', 'deploy', 'succeeded'],
        ['v1', 'deploy', 'succeeded'],
      ],
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
    assert.deepEqual(
      (await api.inject({ url: '/v1/services', headers: { authorization: `Bearer ${guest}` } })).json().services.map((s: { name: string }) => s.name),
      ['web'],
    );
    assert.equal((await api.inject({ url: '/v1/services/web' })).json().releases.length, before);
    assert.equal((await api.inject({ method: 'POST', url: '/v1/services/nope/deploy', payload: { version: 'v1' } })).statusCode, 404);
    const pause = await api.inject({ method: 'POST', url: '/v1/services/web/pause' });
    assert.equal(pause.statusCode, 409);
    assert.match(pause.json().message, /no deploy of web is running/);
  });
});

describe('services on real machines: 3 machines, 2 replicas each', () => {
  let withMachineEngine: WithMachineEngine;
  let machines: { id: string; name: string; address: string }[] = [];
  const images: Record<string, string> = {};

  before(async () => {
    ({ withMachineEngine } = machineEngines(machineContext(config)));
    const client = registryClient(master);
    for (const [version, healthy] of [
      ['r1', true],
      ['r2', true],
      ['r3', false],
      ['r4', true],
    ] as const) {
      images[version] = await pushServiceImage(client, await serviceImage(version, { healthy }), 'shop/web');
    }
    const res = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/front/scale`, payload: { desired: 3 } });
    assert.equal(res.statusCode, 202, res.body);
    const done = await workflowOutcome(temporal.client, res.json().workflowId);
    assert.ok(done.ok && done.result.failed.length === 0, JSON.stringify(done));
    machines = (await api.inject({ url: `/v1/machines?cluster=${cluster}&state=ready` })).json().machines;
    assert.equal(machines.length, 3);
    // The service's current release (v1, the rollback above) was started on each new machine.
    assert.deepEqual(done.result.placed.map((p: { machine: string; service: string; version: string }) => `${p.service} ${p.version} on ${p.machine}`).sort(), machines.map((m) => `web v1 on ${m.name}`).sort());
  });

  /** The service's containers on a machine, as its own engine lists them. */
  const containersOn = (machineId: string): Promise<ServiceContainer[]> => withMachineEngine(machineId, (docker) => serviceContainers(docker, 'web'));
  /** Every replica's page, fetched from the host at its machine's address and published port. */
  async function pages(): Promise<string[]> {
    const out: string[] = [];
    for (const m of machines) {
      for (const c of await containersOn(m.id)) out.push(await (await fetch(`http://${m.address}:${c.ports[String(servicePort)]}/`)).text());
    }
    return out;
  }
  const deployed = async (version: string, fixture?: string) => {
    const res = await deploy(version);
    assert.equal(res.statusCode, 202, res.body);
    return workflowOutcome(temporal.client, 'deploy:web', fixture);
  };

  test('deploy r1: every replica on every machine answers r1', async () => {
    const done = await deployed('r1', 'deploy-service-first');
    assert.ok(done.ok, done.ok ? '' : done.error);
    assert.deepEqual(done.result.updated.sort(), machines.map((m) => m.name).sort());
    assert.deepEqual(await pages(), Array(6).fill('berth-test/httpd r1\n'));
    const shown = (await api.inject({ url: '/v1/services/web' })).json().machines;
    assert.equal(shown.length, 3);
    for (const m of shown) {
      assert.deepEqual([m.version, m.digest, m.health, m.containers.length], ['r1', images.r1, 'healthy', 2]);
      assert.ok(m.containers.every((c: ServiceContainer) => c.state === 'running' && c.ports[String(servicePort)] > 0));
    }
  });

  test('deploy r2 with maxUnavailable 1: a probe of every replica every 100 ms never sees fewer than 5 of 6 healthy; all r2 at the end', async () => {
    // The probe follows each machine's containers by its engine's events, and asks every running one for its page.
    const running = new Map<string, string>();
    const watchers: Promise<void>[] = [];
    let stop = false;
    for (const m of machines) {
      for (const c of await containersOn(m.id)) running.set(c.id, `http://${m.address}:${c.ports[String(servicePort)]}/`);
      watchers.push(
        withMachineEngine(m.id, async (docker) => {
          const events = await docker.getEvents({ filters: { type: ['container'], label: ['berth.service=web'], event: ['start', 'kill', 'die'] } });
          events.on('data', (chunk: Buffer) => {
            for (const line of chunk.toString().split('\n').filter(Boolean)) {
              const e = JSON.parse(line) as { status: string; id: string };
              if (e.status !== 'start') running.delete(e.id);
              else {
                // A container gone again before its inspect answers is simply not probed.
                docker
                  .getContainer(e.id)
                  .inspect()
                  .then((i) => running.set(e.id, `http://${m.address}:${i.NetworkSettings.Ports[`${servicePort}/tcp`][0].HostPort}/`))
                  .catch(() => undefined);
              }
            }
          });
          while (!stop) await sleep(100);
          (events as Readable).destroy();
        }),
      );
    }
    const rounds: { healthy: number; pages: string[] }[] = [];
    const probe = (async () => {
      while (!stop) {
        const answers = await Promise.all(
          [...running.values()].map((url) =>
            fetch(url, { signal: AbortSignal.timeout(1000) }).then(
              (r) => (r.ok ? r.text() : undefined),
              () => undefined,
            ),
          ),
        );
        const pagesSeen = answers.filter((a): a is string => a !== undefined);
        rounds.push({ healthy: pagesSeen.length, pages: pagesSeen });
        await sleep(100);
      }
    })();
    await sleep(1000);
    const done = await deployed('r2');
    await sleep(1000);
    stop = true;
    await Promise.all([probe, ...watchers]);
    assert.ok(done.ok, done.ok ? '' : done.error);
    assert.ok(rounds.length > 30, `${rounds.length} probe rounds`);
    const fewest = Math.min(...rounds.map((r) => r.healthy));
    assert.ok(fewest >= 5, `a probe round saw ${fewest} healthy replicas of 6`);
    // The probe saw the rollout happen: r1 and r2 answering side by side at some point.
    assert.ok(rounds.some((r) => r.pages.includes('berth-test/httpd r1\n') && r.pages.includes('berth-test/httpd r2\n')));
    assert.deepEqual(await pages(), Array(6).fill('berth-test/httpd r2\n'));
  });

  test('deploy r3, whose health check fails: rolled back automatically, all on r2, the failure names the machine and the check', async () => {
    const done = await deployed('r3', 'deploy-service-rolled-back');
    assert.equal(done.ok, false);
    assert.match(
      done.ok ? '' : done.error,
      /web r3 failed in batch 1 of 3: HealthCheckFailed: front-\d: replica 0 of web r3 failed its health check \(GET \/healthz on port 80\): answered 404.*every machine it touched is back on its previous version/,
    );
    assert.deepEqual(await pages(), Array(6).fill('berth-test/httpd r2\n'));
    const [release] = (await api.inject({ url: '/v1/services/web' })).json().releases;
    assert.deepEqual([release.version, release.outcome], ['r3', 'rolled-back']);
  });

  test('the worker killed mid-rollout: another one completes the deploy without restarting the machines already done', async () => {
    assert.equal((await deploy('r4')).statusCode, 202);
    const url = `/v1/workflows/${encodeURIComponent('deploy:web')}`;
    const done = await eventually(
      'a machine done and the next one updating',
      async () => {
        const p = (await api.inject({ url })).json().progress;
        const ms = Object.values<{ machineId: string; status: string }>(p?.machines ?? {});
        return ms.some((m) => m.status === 'done') && ms.some((m) => m.status === 'updating') ? ms.filter((m) => m.status === 'done') : undefined;
      },
      120_000,
      100,
    );
    worker.child.kill('SIGKILL');
    const before = new Map<string, string[]>();
    for (const m of done) before.set(m.machineId, (await containersOn(m.machineId)).map((c) => c.id).sort());
    worker = await spawnWorker();
    const outcome = await workflowOutcome(temporal.client, 'deploy:web', 'deploy-service-worker-killed');
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.error);
    for (const [machineId, ids] of before) assert.deepEqual((await containersOn(machineId)).map((c) => c.id).sort(), ids, `machine ${machineId} was restarted`);
    assert.deepEqual(await pages(), Array(6).fill('berth-test/httpd r4\n'));
  });

  test('scaled up by one: the new machine runs the current release on every replica, and the service lists it', async () => {
    const res = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/front/scale`, payload: { desired: 4 } });
    assert.equal(res.statusCode, 202, res.body);
    const done = await workflowOutcome(temporal.client, res.json().workflowId);
    assert.ok(done.ok, done.ok ? '' : done.error);
    assert.deepEqual(done.result, { created: ['front-4'], removed: [], failed: [], placed: [{ machine: 'front-4', service: 'web', version: 'r4' }] });
    const added = (await api.inject({ url: `/v1/machines?cluster=${cluster}&state=ready` })).json().machines.find((m: { name: string }) => m.name === 'front-4');
    const replicas = await containersOn(added.id);
    assert.equal(replicas.length, 2);
    for (const c of replicas) assert.equal(await (await fetch(`http://${added.address}:${c.ports[String(servicePort)]}/`)).text(), 'berth-test/httpd r4\n');
    const shown = (await api.inject({ url: '/v1/services/web' })).json().machines.find((x: { machineId: string }) => x.machineId === added.id);
    assert.deepEqual([shown.machine, shown.version, shown.digest, shown.health, shown.containers.length], ['front-4', 'r4', images.r4, 'healthy', 2]);
    assert.ok(shown.containers.every((c: ServiceContainer) => c.state === 'running'));
  });

  test('a machine decommissioned is drained first: its replicas stopped and the service shows it drained', async () => {
    const [m] = machines;
    const res = await api.inject({ method: 'DELETE', url: `/v1/machines/${m.id}` });
    assert.equal(res.statusCode, 202, res.body);
    const done = await workflowOutcome(temporal.client, res.json().workflowId, 'decommission-drained');
    assert.ok(done.ok, done.ok ? '' : done.error);
    const shown = (await api.inject({ url: '/v1/services/web' })).json().machines.find((x: { machineId: string }) => x.machineId === m.id);
    assert.deepEqual([shown.health, shown.containers, shown.detail], ['drained', [], 'the machine is being decommissioned']);
  });
});
