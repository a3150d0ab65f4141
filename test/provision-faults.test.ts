// Provisioning under faults at the provider, through the API, on a real Docker engine behind a fault proxy on its
// socket: a container whose start fails is not left behind and its name provisions again; an engine that is gone
// for two minutes while compensation runs is waited for; a cancellation that comes while the machine is being
// reserved (the inventory locked by another writer) gives the reservation back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import proto from '@temporalio/proto';
import { reservedTags } from '../activities/cloud/provider.ts';
import { getMachine, listMachines, machineEvents, openInventory, type Inventory } from '../activities/inventory/index.ts';
import { idcTaskQueue } from '../config/load.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { machineWorkflowId, provisionMachine } from '../workflows/provision-machine.ts';
import type { TestApi } from './harness/api.ts';
import { tempDir, testConfig, testRegistry } from './harness/berth.ts';
import { startDockerSocketProxy, type DockerSocketProxy } from './harness/docker-proxy.ts';
import { hostEngine, removeCluster, sshKeyPair, testClusterName } from './harness/hosts.ts';
import { machineBed, type MachineBed } from './harness/machines.ts';
import type { TestTemporal } from './harness/temporal.ts';
import { eventually, workflowOutcome } from './harness/workflows.ts';

let bed: MachineBed;
let temporal: TestTemporal;
let api: TestApi;
let inventory: Inventory;
let proxy: DockerSocketProxy;
const cluster = testClusterName('faults');
const keyEnv = 'BERTH_TEST_FAULTS_SSH_KEY';

before(async () => {
  const engine = await hostEngine();
  proxy = await startDockerSocketProxy(engine.socketPath);
  process.env[keyEnv] = sshKeyPair().privateKey;
  bed = await machineBed('prov-faults', {
    rateCard: { docker: { small: 0.02 } },
    initProfiles: { light: [{ hostname: {} }], slow: [{ script: { name: 'takes long', check: 'false', run: 'sleep 300' } }] },
    clusters: [
      {
        name: cluster,
        idc: 'idc-a',
        provider: { kind: 'docker', socketPath: proxy.socketPath, image: engine.image.tag },
        ssh: { user: 'root', privateKey: { env: keyEnv } },
        pools: [{ name: 'web', instanceType: 'small', initProfile: 'light' }, { name: 'slow', instanceType: 'small', initProfile: 'slow' }],
      },
    ],
  });
  ({ temporal, api, inventory } = bed);
});

after(async () => {
  await bed?.close();
  await proxy?.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

const finish = (workflowId: string) => workflowOutcome(temporal.client, workflowId);
const containers = async (pool: string) => (await hostEngine()).docker.listContainers({ all: true, filters: { label: [`${reservedTags.cluster}=${cluster}`, `${reservedTags.pool}=${pool}`] } });
async function provision(pool: string): Promise<{ name: string; workflowId: string }> {
  const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool } });
  assert.equal(res.statusCode, 202, res.body);
  return res.json().workflows[0];
}

describe('provisioning under faults at the provider', () => {
  test('a container whose start fails is destroyed, no container is left, and the next request gets the same name', async () => {
    proxy.fail((method, path) => method === 'POST' && /\/containers\/[^/]+\/start$/.test(path), 500);
    let done;
    try {
      const w = await provision('web');
      assert.equal(w.name, 'web-1');
      done = await finish(w.workflowId);
    } finally {
      proxy.heal();
    }
    assert.equal(done.ok, false);
    assert.match(done.ok ? '' : done.error, new RegExp(`^${cluster}/web/web-1: ProviderUnavailable: start container \\S+: injected by the test's fault proxy: .* answers 500; [0-9a-f]{64} was destroyed at the provider$`));
    assert.ok(proxy.failed >= 5, `the start was tried ${proxy.failed} times`);
    assert.deepEqual(await containers('web'), [], 'no container with berth labels remains');
    const [m] = await listMachines(inventory, { cluster, pool: 'web' });
    assert.equal(m.state, 'destroyed');
    assert.match(m.failureReason!, /start container/);

    const again = await provision('web');
    assert.equal(again.name, 'web-1');
    const ok = await finish(again.workflowId);
    assert.ok(ok.ok, ok.ok ? '' : ok.error);
    assert.equal((await containers('web')).length, 1);
  });

  test('the engine gone for two minutes during compensation: the machine stays destroying, and is destroyed once it is back', async () => {
    const { workflowId } = await provision('slow');
    const url = `/v1/workflows/${encodeURIComponent(workflowId)}`;
    await eventually('the init profile to run', async () => ((await api.inject({ url })).json().progress?.['slow-1']?.status === 'initializing' ? true : undefined), 120_000);
    const [row] = await listMachines(inventory, { cluster, pool: 'slow' });
    const container = row.providerId!;
    const { docker } = await hostEngine();

    await proxy.down();
    const downAt = Date.now();
    try {
      assert.equal((await api.inject({ method: 'DELETE', url })).statusCode, 202);
      await eventually('the machine to show destroying', async () => ((await getMachine(inventory, row.id)).state === 'destroying' ? true : undefined));
      // Two minutes without an engine: compensation keeps trying, nothing gives up, the machine still exists.
      while (Date.now() - downAt < 120_000) {
        await sleep(15_000);
        assert.equal((await getMachine(inventory, row.id)).state, 'destroying');
        assert.equal((await temporal.client.workflow.getHandle(workflowId).describe()).status.name, 'RUNNING');
        assert.equal((await docker.getContainer(container).inspect()).State.Running, true);
      }
    } finally {
      await proxy.up();
    }
    const upAt = Date.now();
    await finish(workflowId);
    console.log(`destroyed ${Math.round((Date.now() - upAt) / 1000)} s after the engine came back (down ${Math.round((upAt - downAt) / 1000)} s)`);
    assert.equal((await temporal.client.workflow.getHandle(workflowId).describe()).status.name, 'CANCELLED');
    const m = await getMachine(inventory, row.id);
    assert.deepEqual([m.state, m.failureReason], ['destroyed', 'provisioning was cancelled']);
    assert.deepEqual(await containers('slow'), []);
    const events = await machineEvents(inventory, row.id);
    assert.ok(events.some((e) => e.kind === 'destroy-failed' && /retrying until the provider lets it be destroyed/.test(e.detail ?? '')), JSON.stringify(events));
    assert.match(events.at(-1)!.detail!, new RegExp(`destroyed ${container} at the provider$`));
  });

  test('a cancellation while the reservation is written gives the reservation back', async () => {
    // The main worker in a process of its own, so that this test can hold the inventory's write lock meanwhile.
    const tight = testClusterName('reserve');
    const { config: own, file, env } = testConfig('prov-reserve', temporal.address, [{ registry: await testRegistry('reserve-reg'), idc: 'idc-a' }], {}, {
      rateCard: { docker: { small: 0.02 } },
      initProfiles: { light: [{ hostname: {} }] },
      clusters: [{ name: tight, idc: 'idc-a', provider: { kind: 'docker', socketPath: proxy.socketPath }, ssh: { user: 'root', privateKey: { env: keyEnv } }, pools: [{ name: 'web', instanceType: 'small', initProfile: 'light' }] }],
      projects: [{ name: 'ops', clusters: [tight] }],
    });
    const logFile = join(tempDir('reserve-worker'), 'worker.log');
    const worker: ManagedProcess = spawnManaged('reserve-worker', process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../workers/main.ts', import.meta.url)), '--no-idc'], logFile, { ...process.env, ...env, BERTH_CONFIG: file });
    const ownInventory = await openInventory({ sqliteFile: own.inventory.sqliteFile });
    const lock = new Database(own.inventory.sqliteFile);
    try {
      await waitUntil('the worker process', async () => readFileSync(logFile, 'utf8').includes('berth worker polling'), { timeoutMs: 120_000, process: worker });
      // Another writer holds the inventory (a backup, say): the reservation waits for it, up to SQLite's busy timeout.
      lock.exec('BEGIN EXCLUSIVE');
      // Started as the API starts it, but straight through Temporal: the API's audit write would wait on the lock too.
      const workflowId = machineWorkflowId(tight, 'web', 'web-1');
      const handle = await temporal.client.workflow.start(provisionMachine, {
        taskQueue: own.taskQueues.main,
        workflowId,
        args: [{ cluster: tight, pool: 'web', name: 'web-1', idcTaskQueue: idcTaskQueue(own, 'idc-a') }],
      });
      const started = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
      await eventually('the reservation to be under way', async () =>
        ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'reserveMachine' && a.state === started) ? true : undefined,
      );
      await handle.cancel();
      lock.exec('COMMIT');
      await finish(workflowId);
      assert.equal((await handle.describe()).status.name, 'CANCELLED');
      // The reservation lands after the cancellation; what matters is that it does not stay.
      const m = await eventually('the reservation to be written', async () => (await listMachines(ownInventory, { cluster: tight }))[0], 20_000);
      const given = async () => {
        const now = await getMachine(ownInventory, m.id);
        return now.state === 'destroyed' ? now : undefined;
      };
      const settled = await eventually('the reservation to be given back', given, 20_000).catch(() => getMachine(ownInventory, m.id));
      assert.equal(settled.state, 'destroyed', `the reservation is left ${settled.state}, counting against the budget and holding the name ${m.name}`);
      // Given back as the cancellation of a reservation, or, when the reservation's answer came first, by compensation.
      assert.match(settled.failureReason!, /^provisioning was cancelled( while reserving)?$/);
      assert.equal((await machineEvents(ownInventory, m.id)).at(-1)!.detail, `${settled.failureReason}; nothing had been created at the provider`);
    } finally {
      if (lock.inTransaction) lock.exec('COMMIT');
      lock.close();
      await ownInventory.destroy();
      await worker.stop();
    }
  });
});
