// Provisioning on the aws provider against moto_server, through a proxy that loses EC2's answers: every
// RunInstances reaches EC2, which launches the instance, but berth is answered 503, and EC2 then stays out of
// berth's reach. The create fails; compensation keeps the machine `destroying` until EC2 answers again, finds
// the instances by the machine's idempotency key and terminates every one of them.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { reservedTags } from '../activities/cloud/provider.ts';
import { getMachine, listMachines } from '../inventory/index.ts';
import { tempDir } from '../testbed/berth.ts';
import { sshKeyPair, testClusterName } from '../testbed/hosts.ts';
import { startLostAnswerProxy, startMoto, type LostAnswerProxy, type Moto } from './harness/moto.ts';
import { machineBed, type MachineBed } from './harness/machines.ts';
import { eventually, workflowOutcome } from './harness/workflows.ts';

let bed: MachineBed;
let moto: Moto;
let proxy: LostAnswerProxy;
let ec2: EC2Client;
const cluster = testClusterName('cloud');

before(async () => {
  moto = await startMoto();
  proxy = await startLostAnswerProxy(moto.url);
  ec2 = new EC2Client({ region: 'eu-west-1', endpoint: moto.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  process.env.BERTH_TEST_AWS_FAULTS_SSH_KEY = sshKeyPair().privateKey;
  process.env.BERTH_TEST_AWS_FAULTS_KEY_ID = 'AKIDBERTHTEST';
  const secretFile = join(tempDir('aws-faults'), 'secret-access-key');
  writeFileSync(secretFile, 'berth-test-secret\n');
  bed = await machineBed('prov-aws', {
    rateCard: { aws: { 't3.micro': 0.0104 } },
    initProfiles: { light: [{ hostname: {} }] },
    clusters: [
      {
        name: cluster,
        idc: 'idc-a',
        // An AMI moto knows; credentials by reference, as in berth.yaml.
        provider: { kind: 'aws', region: 'eu-west-1', endpoint: proxy.url, imageId: 'ami-785db401', accessKeyId: { env: 'BERTH_TEST_AWS_FAULTS_KEY_ID' }, secretAccessKey: { file: secretFile } },
        ssh: { user: 'root', privateKey: { env: 'BERTH_TEST_AWS_FAULTS_SSH_KEY' } },
        pools: [{ name: 'web', instanceType: 't3.micro', initProfile: 'light' }],
      },
    ],
  });
});

after(async () => {
  await bed?.close();
  ec2?.destroy();
  await proxy?.close();
  await moto?.stop();
});

/** The instances EC2 has for an idempotency key, in any state. */
async function instancesOf(key: string) {
  const out = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${reservedTags.idempotencyKey}`, Values: [key] }] }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => ({ id: i.InstanceId!, state: i.State!.Name! }));
}

test('RunInstances accepted but never answered: compensation terminates every instance the key made, once EC2 answers again', async () => {
  const { api, inventory, temporal } = bed;
  const res = await api.inject({ method: 'POST', url: '/v1/machines', payload: { cluster, pool: 'web' } });
  assert.equal(res.statusCode, 202, res.body);
  const { workflowId } = res.json().workflows[0];
  const machine = await eventually('the machine to be recorded', async () => (await listMachines(inventory, { cluster }))[0]);
  // The create gives up (EC2 unreachable) and compensation begins; it cannot reach EC2 either.
  const compensating = await eventually(
    'compensation to begin',
    async () => {
      const { state } = await getMachine(inventory, machine.id);
      return state === 'destroying' || state === 'destroyed' ? state : undefined;
    },
    120_000,
  );
  const launched = await instancesOf(machine.id);
  // moto does not honour RunInstances' ClientToken as EC2 does: each lost answer may be an instance of its own.
  console.log(`${proxy.lost} RunInstances answers lost, ${launched.length} instances launched for ${machine.id}`);
  assert.ok(proxy.lost >= 1 && launched.length >= 1, `${proxy.lost} answers lost, ${launched.length} instances`);
  assert.ok(
    launched.every((i) => i.state === 'running' || i.state === 'pending'),
    JSON.stringify(launched),
  );
  assert.equal((await getMachine(inventory, machine.id)).providerId, null, 'berth never learnt an instance id');

  proxy.heal();
  const done = await workflowOutcome(temporal.client, workflowId);
  const after = await instancesOf(machine.id);
  assert.deepEqual(
    after.filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down'),
    [],
    'no instance of the machine keeps running',
  );
  assert.deepEqual(after.map((i) => i.id).sort(), launched.map((i) => i.id).sort());
  assert.equal(compensating, 'destroying', 'while EC2 was out of reach the machine showed destroying');
  assert.equal(done.ok, false);
  assert.match(done.ok ? '' : done.error, new RegExp(`^${cluster}/web/web-1: ProviderUnavailable: EC2 .*; (i-[0-9a-f]+(, )?)+ was destroyed at the provider$`));
  const m = await getMachine(inventory, machine.id);
  assert.equal(m.state, 'destroyed');
  assert.match(m.failureReason!, /^ProviderUnavailable: EC2 /);
});
