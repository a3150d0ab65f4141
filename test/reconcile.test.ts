// Reconciliation on a real Docker engine, through the API and bin/berth. Machines that outlived their inventory
// (orphans: one of an earlier installation, one of this one whose create was never recorded), a machine whose
// container vanished behind berth's back (a ghost) and one stopped behind its back (drift) are reported with their
// cost, then resolved: an orphan destroyed, the other adopted into its pool, the ghost decommissioned. A name an
// orphan holds is refused saying so and naming the remedy. Each cluster has a Temporal Schedule kept with berth.yaml.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ScheduleNotFoundError } from '@temporalio/client';
import { reservedTags } from '../activities/cloud/provider.ts';
import { getMachine, installationId, listMachines, type Inventory } from '../inventory/index.ts';
import type { ReconcileReport } from '../activities/reconcile/index.ts';
import { keepReconcileSchedules, reconcileScheduleId } from '../api/reconcile-schedules.ts';
import type { BerthConfig } from '../config/load.ts';
import type { TestApi } from '../testbed/api.ts';
import { runCli } from './harness/cli.ts';
import { hostEngine, machineSpec, removeCluster, sshKeyPair, testClusterName, testDockerProvider } from '../testbed/hosts.ts';
import { machineBed, type MachineBed } from './harness/machines.ts';
import type { TestTemporal } from './harness/temporal.ts';
import { eventually, workflowOutcome } from './harness/workflows.ts';

let bed: MachineBed;
let temporal: TestTemporal;
let config: BerthConfig;
let api: TestApi;
let inventory: Inventory;
const cluster = testClusterName('recon');
const keys = sshKeyPair();
const keyEnv = 'BERTH_TEST_RECONCILE_SSH_KEY';

before(async () => {
  const engine = await hostEngine();
  process.env[keyEnv] = keys.privateKey;
  bed = await machineBed('reconcile', {
    rateCard: { docker: { small: 0.02 } },
    initProfiles: { light: [{ hostname: {} }] },
    clusters: [
      {
        name: cluster,
        idc: 'idc-a',
        provider: { kind: 'docker', socketPath: engine.socketPath, image: engine.image.tag },
        ssh: { user: 'root', privateKey: { env: keyEnv } },
        reconcileEvery: '1h',
        pools: [{ name: 'web', instanceType: 'small', initProfile: 'light' }],
      },
    ],
  });
  ({ temporal, config, api, inventory } = bed);
});

after(async () => {
  await bed?.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

const finish = (workflowId: string, fixture?: string) => workflowOutcome(temporal.client, workflowId, fixture);
/** GET /v1/clusters/:cluster/reconciliation */
type LastReport = { workflowId: string; nextRun: string | null; report: ReconcileReport };
async function started(res: { statusCode: number; body: string; json(): { workflowId: string } }, fixture?: string) {
  assert.equal(res.statusCode, 202, res.body);
  return finish(res.json().workflowId, fixture);
}
async function provision(name: string) {
  const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool: 'web', name } });
  assert.equal(res.statusCode, 202, res.body);
  return finish(res.json().workflows[0].workflowId);
}
async function reconcile(): Promise<ReconcileReport> {
  const done = await started(await api.inject({ method: 'POST', url: `/v1/clusters/${cluster}/reconcile` }), 'reconcile-inventory');
  assert.ok(done.ok, done.ok ? '' : done.error);
  return done.result as ReconcileReport;
}
const machineNamed = async (name: string) => (await listMachines(inventory, { cluster })).find((m) => m.name === name && m.state !== 'destroyed')!;
const berth = (url: string, ...args: string[]) => runCli({ url, token: api.adminToken }, args);

describe('reconciliation', () => {
  test('orphans, a ghost and drift are reported with their cost, and resolved through the API and bin/berth', async () => {
    const { docker } = await hostEngine();
    for (const name of ['web-1', 'web-2']) {
      const done = await provision(name);
      assert.ok(done.ok, done.ok ? '' : done.error);
    }
    const [stopped, gone] = [await machineNamed('web-1'), await machineNamed('web-2')];
    // Behind berth's back: one machine's container removed (a ghost), another's stopped (drift).
    await docker.getContainer(gone.providerId!).remove({ force: true });
    await docker.getContainer(stopped.providerId!).stop({ t: 1 });
    // Machines no row accounts for: one of an earlier installation (a fresh .berth/ since), one of this
    // installation whose create never reached the inventory.
    const earlier = await (await testDockerProvider(cluster, { installation: 'an-earlier-installation' })).create(machineSpec(cluster, 'web-7', keys.publicKey, { idempotencyKey: 'earlier.web-7' }));
    const here = await installationId(inventory);
    const lost = await (await testDockerProvider(cluster, { installation: here })).create(machineSpec(cluster, 'web-8', keys.publicKey, { idempotencyKey: 'lost.web-8' }));

    const report = await reconcile();
    // web-1 (stopped), web-7 and web-8; web-2's container is gone.
    assert.deepEqual([report.cluster, report.provider, report.installation, report.atProvider], [cluster, 'docker', here, 3]);
    const orphans = Object.fromEntries(report.orphans.map((o) => [o.providerId, o]));
    assert.deepEqual(Object.keys(orphans).sort(), [earlier.id, lost.id].sort());
    assert.deepEqual([orphans[earlier.id].pool, orphans[earlier.id].name, orphans[earlier.id].installation, orphans[earlier.id].madeHere, orphans[earlier.id].hourlyPrice], ['web', 'web-7', 'an-earlier-installation', false, 0.02]);
    assert.deepEqual([orphans[lost.id].name, orphans[lost.id].installation, orphans[lost.id].madeHere], ['web-8', here, true]);
    assert.ok(orphans[lost.id].costSoFar! >= 0);
    assert.equal(orphans[lost.id].remedy, `adopt it (bin/berth orphan adopt ${lost.id} --cluster ${cluster}) or destroy it (bin/berth orphan destroy ${lost.id} --cluster ${cluster})`);
    assert.deepEqual(
      report.ghosts.map((g) => [g.machineId, g.name, g.state, g.providerId]),
      [[gone.id, 'web-2', 'ready', gone.providerId]],
    );
    assert.deepEqual(
      report.drift.map((d) => [d.machineId, d.inventoryState, d.providerState]),
      [[stopped.id, 'ready', 'stopped']],
    );
    // A month of two orphans and one ghost at 0.02 an hour.
    assert.deepEqual(report.monthlyCost, { orphans: 29.2, ghosts: 14.6 });

    // The orphan holds the name web-7: provisioning it says so, names the remedy, and leaves the orphan alone.
    const clash = await provision('web-7');
    assert.equal(clash.ok, false);
    assert.equal(
      clash.ok ? '' : clash.error,
      `${cluster}/web/web-7: NameClash: cluster ${cluster} already has a machine named web-7 on the Docker engine: container berth-${cluster}-web-7 (${earlier.id}, running), ` +
        `made by berth installation an-earlier-installation; no machine of this inventory accounts for it: an orphan; ` +
        `adopt it (bin/berth orphan adopt ${earlier.id} --cluster ${cluster}) or destroy it (bin/berth orphan destroy ${earlier.id} --cluster ${cluster}), then ask for web-7 again; ` +
        `nothing had been created at the provider`,
    );
    assert.equal((await docker.getContainer(earlier.id).inspect()).State.Running, true);

    // bin/berth shows the report and destroys the orphan; a developer may not.
    const url = await api.listen();
    const shown = await berth(url, 'reconcile', '--cluster', cluster);
    assert.equal(shown.code, 0, shown.stderr);
    for (const line of [
      `orphan ${earlier.id}  web/web-7 running, made by installation an-earlier-installation`,
      `orphan ${lost.id}  web/web-8 running, made by this installation`,
      `ghost ${gone.id}  web/web-2 ready in the inventory, gone at the provider`,
      `drift ${stopped.id}  web/web-1 ready in the inventory, stopped at the provider`,
    ]) {
      assert.ok(shown.stdout.includes(line), `${line}\n${shown.stdout}`);
    }
    const developer = await api.userWith('dev', { ops: 'developer' });
    const refused = await api.inject({ method: 'POST', url: `/v1/clusters/${cluster}/orphans/${earlier.id}/destroy`, headers: { authorization: `Bearer ${developer}` } });
    assert.equal(refused.statusCode, 403, refused.body);
    const destroyed = await berth(url, 'orphan', 'destroy', earlier.id, '--cluster', cluster, '--watch');
    assert.equal(destroyed.code, 0, destroyed.stderr + destroyed.stdout);
    await assert.rejects(docker.getContainer(earlier.id).inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
    // A machine of the inventory is no orphan to destroy.
    const notOrphan = await started(await api.inject({ method: 'POST', url: `/v1/clusters/${cluster}/orphans/${stopped.providerId}/destroy` }));
    assert.match(notOrphan.ok ? '' : notOrphan.error, new RegExp(`is machine ${stopped.id} \\(web/web-1, ready\\) of this inventory: decommission it instead$`));

    // The other orphan adopted into its pool, as its tags say: SSH, host key pinned, profile run, ready.
    const adopted = await started(await api.inject({ method: 'POST', url: `/v1/clusters/${cluster}/orphans/${lost.id}/adopt`, payload: {} }), 'adopt-orphan');
    assert.ok(adopted.ok, adopted.ok ? '' : adopted.error);
    const web8 = await getMachine(inventory, (adopted.result as { machineId: string }).machineId);
    assert.deepEqual([web8.name, web8.pool, web8.state, web8.providerId], ['web-8', 'web', 'ready', lost.id]);
    assert.match(web8.hostKeyFingerprint!, /^SHA256:/);

    // The ghost decommissioned: its destroy finds nothing to end and records it destroyed.
    assert.ok((await started(await api.inject({ method: 'DELETE', url: `/v1/machines/${gone.id}` }))).ok);
    assert.equal((await getMachine(inventory, gone.id)).state, 'destroyed');
    await docker.getContainer(stopped.providerId!).start();
    // With the orphan gone, its name provisions.
    const web7 = await provision('web-7');
    assert.ok(web7.ok, web7.ok ? '' : web7.error);

    const clean = await reconcile();
    assert.deepEqual([clean.orphans, clean.ghosts, clean.drift, clean.atProvider], [[], [], [], 3]);
    // The API's last report is that one, once Temporal's visibility has it.
    const last = await eventually<LastReport>('the last report', async () => {
      const res = await api.inject({ url: `/v1/clusters/${cluster}/reconciliation` });
      return res.statusCode === 200 && res.json().report.checkedAt === clean.checkedAt ? res.json() : undefined;
    });
    assert.deepEqual(last.report, clean);
    // What is left is this installation's: the earlier installation's container is gone.
    const labelled = await docker.listContainers({ all: true, filters: { label: [`${reservedTags.cluster}=${cluster}`, `${reservedTags.installation}=${here}`] } });
    assert.equal(labelled.length, 3);
  });

  test('a Temporal Schedule per cluster, kept in line with berth.yaml', async () => {
    const kept = await keepReconcileSchedules(temporal.client, config);
    assert.deepEqual(kept, { created: [cluster], updated: [], deleted: [] });
    const handle = temporal.client.schedule.getHandle(reconcileScheduleId(cluster));
    const described = await handle.describe();
    assert.equal(described.spec.intervals?.[0].every, 3_600_000);
    assert.equal(described.action.type === 'startWorkflow' && described.action.workflowType, 'reconcileInventory');
    // A scheduled run's report is the last one the API shows.
    await handle.trigger();
    const scheduled = await eventually<LastReport>('a scheduled report', async () => {
      const res = await api.inject({ url: `/v1/clusters/${cluster}/reconciliation` });
      return res.json().workflowId?.startsWith(`reconcile:${cluster}-`) ? res.json() : undefined;
    });
    assert.deepEqual([scheduled.report.orphans, scheduled.report.ghosts], [[], []]);
    assert.ok(new Date(scheduled.nextRun!).getTime() > Date.now(), `next run ${scheduled.nextRun}`);

    assert.deepEqual(await keepReconcileSchedules(temporal.client, config), { created: [], updated: [cluster], deleted: [] });
    const without = { ...config, clusters: [] };
    assert.deepEqual((await keepReconcileSchedules(temporal.client, without)).deleted, [cluster]);
    await assert.rejects(handle.describe(), ScheduleNotFoundError);
  });
});
