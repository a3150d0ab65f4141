// A machine's own Docker engine, reached as deploys reach it: a docker-provider machine provisioned through the
// API and the provisionMachine workflow with the `docker` init step (which starts the engine inside it), then
// withMachineEngine: dockerode over SSH as the cluster's user, only to the host key pinned in the inventory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HostError } from '../activities/hosts/errors.ts';
import { InventoryError } from '../inventory/index.ts';
import { machineEngines, type WithMachineEngine } from '../activities/machine-engine/connect.ts';
import { machineContext } from '../activities/machine-context.ts';
import { hostEngine, removeCluster, sshKeyPair, testClusterName, testDockerCluster } from '../testbed/hosts.ts';
import { machineBed, type MachineBed } from './harness/machines.ts';
import { importServiceImage, serviceImage, servicePort } from '../testbed/service-image.ts';
import { eventually, workflowOutcome } from './harness/workflows.ts';

const cluster = testClusterName('engine');
let bed: MachineBed;
let withMachineEngine: WithMachineEngine;
let machine: { id: string; address: string; sshPort: number; hostKeyFingerprint: string };
let steps: { step: string; status: string }[];

before(async () => {
  process.env.BERTH_TEST_ENGINE_SSH_KEY = sshKeyPair().privateKey;
  bed = await machineBed('machine-engine', {
    rateCard: { docker: { small: 0.02 } },
    // No registry mirror: the IDC registry of this bed is on the host's loopback, which is not the machine's.
    initProfiles: { engine: [{ hostname: {} }, { docker: { mirror: false } }] },
    clusters: [await testDockerCluster(cluster, 'idc-a', 'BERTH_TEST_ENGINE_SSH_KEY', 'engine')],
  });
  ({ withMachineEngine } = machineEngines(machineContext(bed.config)));
  const res = await bed.api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool: 'web', name: 'engine-1' } });
  assert.equal(res.statusCode, 202, res.body);
  const done = await workflowOutcome(bed.temporal.client, res.json().workflows[0].workflowId);
  assert.ok(done.ok, done.ok ? '' : done.error);
  steps = done.result.steps;
  [machine] = (await bed.api.inject({ url: `/v1/machines?cluster=${cluster}&state=ready` })).json().machines;
});

after(async () => {
  await bed?.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

/** Runs a command in the machine's container from the host's engine (root, outside SSH); returns its output. */
async function onMachine(cmd: string[]): Promise<string> {
  const { docker } = await hostEngine();
  const [container] = await docker.listContainers({ filters: { label: [`berth:cluster=${cluster}`] } });
  const exec = await docker.getContainer(container.Id).exec({ Cmd: cmd, AttachStdout: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((resolve) => stream.on('end', resolve));
  // The attach stream frames the output in 8-byte headers: fine for the patterns searched here.
  return Buffer.concat(chunks).toString('latin1');
}

/** The machine's established SSH connections, as its own network namespace sees them. */
const sshConnections = async () => ((await onMachine(['nsenter', '--net=/run/berth/netns', 'ss', '-Htn', 'state', 'established', '( sport = :22 )'])).match(/:22\b/g) ?? []).length;

describe('a machine of the docker provider runs containers', () => {
  test('the docker step started the engine during provisioning, and the machine is ready with its host key pinned', () => {
    assert.deepEqual(
      steps.map((s) => [s.step, s.status]),
      [
        ['hostname', 'changed'],
        ['docker', 'changed'],
      ],
    );
    assert.match(machine.hostKeyFingerprint, /^SHA256:/);
    assert.match(machine.address, /^127\.1\.\d+\.\d+$/);
  });

  test("an image imported through withMachineEngine runs with a published port, and its page answers at the machine's address", async () => {
    const v1 = await serviceImage('v1');
    const info = await withMachineEngine(machine.id, async (docker) => {
      await importServiceImage(docker, v1);
      const container = await docker.createContainer({
        name: 'httpd-v1',
        Image: v1.ref,
        ExposedPorts: { [`${servicePort}/tcp`]: {} },
        HostConfig: { PortBindings: { [`${servicePort}/tcp`]: [{ HostPort: '8080' }] } },
      });
      await container.start();
      return container.inspect();
    });
    assert.equal(info.State.Status, 'running');
    const page = await eventually(
      `the page at ${machine.address}:8080`,
      () =>
        fetch(`http://${machine.address}:8080/`).then(
          (r) => r.text(),
          () => undefined,
        ),
      15_000,
    );
    assert.equal(page, v1.page);
    // The engine that ran it is the machine's, not the host's.
    assert.deepEqual(await (await hostEngine()).docker.listContainers({ filters: { name: ['httpd-v1'] } }), []);
    // Every SSH connection withMachineEngine opened is closed once it returns.
    await eventually('no SSH connection left open on the machine', async () => ((await sshConnections()) === 0 ? true : undefined), 10_000);
  });

  test('a host presenting another key than the pinned one is refused before anything runs', async () => {
    const pinned = machine.hostKeyFingerprint;
    const other = `SHA256:${'A'.repeat(43)}`;
    await bed.inventory.updateTable('machines').set({ host_key_fingerprint: other }).where('id', '=', machine.id).execute();
    let ran = false;
    try {
      await assert.rejects(
        withMachineEngine(machine.id, async () => {
          ran = true;
        }),
        (err: HostError) => {
          assert.equal(err.type, 'HostKeyMismatch');
          assert.equal(err.retryable, false);
          assert.match(err.message, new RegExp(`presented host key ${pinned.replace(/[+/]/g, '\\$&')}, not ${other} pinned on first contact: refused`));
          return true;
        },
      );
    } finally {
      await bed.inventory.updateTable('machines').set({ host_key_fingerprint: pinned }).where('id', '=', machine.id).execute();
    }
    assert.equal(ran, false);
  });

  test('a machine the inventory does not have is refused; one whose engine is stopped says so, worth another try', async () => {
    await assert.rejects(
      withMachineEngine('no-such-machine', async () => undefined),
      (err: InventoryError) => err instanceof InventoryError && err.type === 'UnknownMachine',
    );
    // As a crash would: no orderly stop of its containers.
    await onMachine(['sh', '-c', 'kill -9 $(pidof dockerd); while pidof dockerd >/dev/null; do sleep 0.1; done']);
    await assert.rejects(
      withMachineEngine(machine.id, async () => undefined),
      (err: HostError) => {
        assert.equal(err.type, 'EngineUnavailable');
        assert.equal(err.retryable, true);
        assert.match(err.message, /^the Docker engine of machine .* \(.*\/web\/engine-1\) does not answer over SSH/);
        return true;
      },
    );
  });
});
