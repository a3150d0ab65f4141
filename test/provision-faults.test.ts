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
import { NativeConnection, Worker } from '@temporalio/worker';
import { reservedTags } from '../activities/cloud/provider.ts';
import { getMachine, listMachines, machineEvents, openInventory, type Inventory } from '../inventory/index.ts';
import { idcTaskQueue } from '../config/load.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { workflowsPath } from '../workers/run.ts';
import { machineWorkflowId, provisionMachine } from '../workflows/provision-machine.ts';
import type { TestApi } from '../testbed/api.ts';
import { tempDir, testConfig, testRegistry } from '../testbed/berth.ts';
import { startDockerSocketProxy, type DockerSocketProxy } from './harness/docker-proxy.ts';
import { hostEngine, removeCluster, sshKeyPair, testClusterName } from '../testbed/hosts.ts';
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
        pools: [
          { name: 'web', instanceType: 'small', initProfile: 'light' },
          { name: 'slow', instanceType: 'small', initProfile: 'slow' },
        ],
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
    assert.ok(proxy.failed >= 5, `the start was tried ${proxy.failed} times`);
    assert.deepEqual(await containers('web'), [], 'no container with berth labels remains');
    const [m] = await listMachines(inventory, { cluster, pool: 'web' });
    assert.equal(m.state, 'destroyed');
    assert.match(m.failureReason!, /start container/);
    // The failure says what happened at the provider: the container it made was destroyed.
    assert.match(done.ok ? '' : done.error, new RegExp(`^${cluster}/web/web-1: ProviderUnavailable: start container \\S+: injected by the test's fault proxy: .* answers 500; [0-9a-f]{64} was destroyed at the provider$`));

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
    // What the machine and its provisioning look like every 15 s while the engine is gone.
    const seen: string[] = [];
    try {
      assert.equal((await api.inject({ method: 'DELETE', url })).statusCode, 202);
      while (Date.now() - downAt < 120_000) {
        await sleep(15_000);
        const status = (await temporal.client.workflow.getHandle(workflowId).describe()).status.name;
        const running = (await docker.getContainer(container).inspect()).State.Running;
        seen.push(`${(await getMachine(inventory, row.id)).state} ${status} ${running ? 'container running' : 'container stopped'}`);
      }
    } finally {
      await proxy.up();
    }
    const upAt = Date.now();
    await finish(workflowId);
    console.log(`destroyed ${Math.round((Date.now() - upAt) / 1000)} s after the engine came back (down ${Math.round((upAt - downAt) / 1000)} s)`);
    assert.deepEqual(await containers('slow'), [], 'the container is gone once the engine is back');
    const m = await getMachine(inventory, row.id);
    assert.deepEqual([m.state, m.failureReason], ['destroyed', 'provisioning was cancelled']);
    // Two minutes without an engine: compensation kept trying, nothing gave up, the machine showed destroying.
    assert.deepEqual(new Set(seen), new Set(['destroying RUNNING container running']), seen.join('\n'));
    assert.equal((await temporal.client.workflow.getHandle(workflowId).describe()).status.name, 'CANCELLED');
    const events = await machineEvents(inventory, row.id);
    assert.ok(
      events.some((e) => e.kind === 'destroy-failed' && /retrying until the provider lets it be destroyed/.test(e.detail ?? '')),
      JSON.stringify(events),
    );
    assert.match(events.at(-1)!.detail!, new RegExp(`destroyed ${container} at the provider$`));
  });

  test('a cancellation processed while the reservation is written gives the reservation back', async () => {
    // The main queue's activities in a process of their own and its workflows here, so that a reservation waiting
    // on the inventory's write lock (SQLite waits synchronously) keeps neither this test nor the workflow waiting.
    const tight = testClusterName('reserve');
    const {
      config: own,
      file,
      env,
    } = testConfig(
      'prov-reserve',
      temporal.address,
      [{ registry: await testRegistry('reserve-reg'), idc: 'idc-a' }],
      {},
      {
        rateCard: { docker: { small: 0.02 } },
        initProfiles: { light: [{ hostname: {} }] },
        clusters: [
          { name: tight, idc: 'idc-a', provider: { kind: 'docker', socketPath: proxy.socketPath }, ssh: { user: 'root', privateKey: { env: keyEnv } }, pools: [{ name: 'web', instanceType: 'small', initProfile: 'light' }] },
        ],
        projects: [{ name: 'ops', clusters: [tight] }],
      },
    );
    const logFile = join(tempDir('reserve-activities'), 'worker.log');
    const activities: ManagedProcess = spawnManaged('reserve-activities', process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./harness/activity-worker.ts', import.meta.url))], logFile, {
      ...process.env,
      ...env,
      BERTH_CONFIG: file,
    });
    const connection = await NativeConnection.connect({ address: own.temporal.address });
    const workflows = await Worker.create({ connection, taskQueue: own.taskQueues.main, workflowsPath });
    const running = workflows.run();
    const ownInventory = await openInventory(own.inventory);
    // The test's config keeps the inventory in a SQLite file, whose write lock this connection takes.
    const lock = new Database(own.inventory.sqliteFile);
    const started = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
    /**
     * Another writer holds the inventory (a backup, say), so the reservation waits for it, up to SQLite's busy
     * timeout of 5 s; meanwhile the provisioning is cancelled and the workflow takes the cancellation in; then the
     * writer lets go and the reservation lands. The reservation, if it landed; undefined if the busy timeout came first.
     */
    const cancelledWhileReserving = async (name: string) => {
      lock.exec('BEGIN EXCLUSIVE');
      try {
        // Started as the API starts it, but straight through Temporal: the API's audit write would wait on the lock too.
        const handle = await temporal.client.workflow.start(provisionMachine, {
          taskQueue: own.taskQueues.main,
          workflowId: machineWorkflowId(tight, 'web', name),
          args: [{ cluster: tight, pool: 'web', name, idcTaskQueue: idcTaskQueue(own, 'idc-a') }],
        });
        await eventually('the reservation to be under way', async () => (((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'reserveMachine' && a.state === started) ? true : undefined));
        await handle.cancel();
        await eventually('the workflow to take the cancellation in', async () => ((await handle.fetchHistory()).events ?? []).some((e) => e.activityTaskCancelRequestedEventAttributes) || undefined, 10_000, 50);
      } finally {
        lock.exec('COMMIT');
      }
      await finish(machineWorkflowId(tight, 'web', name));
      return eventually('the reservation to be written', async () => (await listMachines(ownInventory, { cluster: tight })).find((m) => m.name === name), 10_000).catch(() => undefined);
    };
    try {
      await waitUntil('the activity worker', async () => readFileSync(logFile, 'utf8').includes('activities polling'), { timeoutMs: 120_000, process: activities });
      // A loaded machine may take the 5 s before the lock is let go: then nothing was reserved, and it is tried again.
      let m;
      for (let i = 1; i <= 3 && !m; i++) m = await cancelledWhileReserving(`web-${i}`);
      assert.ok(m, 'the reservation never landed while the lock was held (the machine too slow three times)');
      const given = async () => {
        const now = await getMachine(ownInventory, m.id);
        return now.state === 'destroyed' ? now : undefined;
      };
      const settled = await eventually('the reservation to be given back', given, 20_000).catch(() => getMachine(ownInventory, m.id));
      assert.equal(settled.state, 'destroyed', `the reservation is left ${settled.state}, counting against the budget and holding the name ${m.name}`);
      // Given back as a cancelled reservation, or, when the reservation's answer came first, by compensation.
      assert.match(settled.failureReason!, /^provisioning was cancelled( while reserving)?$/);
      assert.equal((await machineEvents(ownInventory, m.id)).at(-1)!.detail, `${settled.failureReason}; nothing had been created at the provider`);
    } finally {
      if (lock.inTransaction) lock.exec('COMMIT');
      lock.close();
      await ownInventory.destroy();
      await activities.stop();
      workflows.shutdown();
      await running;
      await connection.close();
    }
  });
});
