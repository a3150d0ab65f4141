import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsProvider } from '../activities/cloud/aws/provider.ts';
import { machineSpecSchema, type CloudProvider, type MachineSpec } from '../activities/cloud/provider.ts';
import { tempDir } from '../testbed/berth.ts';
import { startMoto, startThrottlingProxy, type Moto } from './harness/moto.ts';

// Credentials by reference, as in berth.yaml: the key id from an env var, the secret from a file.
const keyIdEnv = 'BERTH_TEST_AWS_ACCESS_KEY_ID';
process.env[keyIdEnv] = 'AKIDBERTHTEST';
const secretFile = join(tempDir('aws'), 'secret-access-key');
writeFileSync(secretFile, 'berth-test-secret\n');

// An AMI moto knows (Ubuntu 16.04 in its default catalog).
const imageId = 'ami-785db401';
const sshPublicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthTestKeyBerthTestKeyBerthTestKeyBerth berth@test';

function provider(endpoint: string, accessKeyId: { env: string } = { env: keyIdEnv }): CloudProvider {
  return awsProvider({ kind: 'aws', region: 'eu-west-1', endpoint, imageId, accessKeyId, secretAccessKey: { file: secretFile } }, { cluster: 'cloud', rateCard: { aws: { 't3.micro': 0.0104 } }, installation: 'aws-tests' });
}

const spec = (name: string, idempotencyKey: string): MachineSpec => machineSpecSchema.parse({ cluster: 'cloud', pool: 'web', name, instanceType: 't3.micro', idempotencyKey, tags: { team: 'ops' }, sshPublicKey });

describe('aws provider against moto_server', () => {
  let moto: Moto;
  let ec2: EC2Client;
  const instancesWithKey = async (key: string) => {
    const out = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:berth:idempotency-key', Values: [key] }] }));
    return out.Reservations!.flatMap((r) => r.Instances!);
  };

  const userData = async (id: string) => {
    const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }));
    return Buffer.from(attr.UserData!.Value!, 'base64').toString();
  };

  before(async () => {
    const started = Date.now();
    moto = await startMoto();
    console.log(`moto_server up in ${Date.now() - started} ms at ${moto.url}`);
    ec2 = new EC2Client({ region: 'eu-west-1', endpoint: moto.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  });
  after(async () => {
    ec2?.destroy();
    await moto?.stop();
  });

  test('create twice with one key makes one instance, tagged, with the SSH key for its user in cloud-init', async () => {
    const aws = provider(moto.url);
    const first = await aws.create(spec('web-1', 'req-web-1'));
    const second = await aws.create(spec('web-1', 'req-web-1'));
    assert.equal(first.created, true);
    assert.equal(second.created, false);
    assert.equal(second.id, first.id);
    assert.match(first.id, /^i-[0-9a-f]+$/);
    assert.deepEqual(
      (await instancesWithKey('req-web-1')).map((i) => i.InstanceId),
      [first.id],
    );
    assert.deepEqual(first.tags, { Name: 'web-1', team: 'ops', 'berth:cluster': 'cloud', 'berth:pool': 'web', 'berth:name': 'web-1', 'berth:idempotency-key': 'req-web-1', 'berth:installation': 'aws-tests' });

    assert.equal(await userData(first.id), `#cloud-config\ndisable_root: false\nssh_authorized_keys:\n  - "${sshPublicKey}"\n`);
    const deploy = await aws.create({ ...spec('web-1b', 'req-web-1b'), sshUser: 'deploy' });
    assert.match(await userData(deploy.id), /\n {2}- name: deploy\n {4}sudo: "ALL=\(ALL\) NOPASSWD:ALL"\n[^]* {6}- "ssh-ed25519 AAAAC3/);
    assert.equal(aws.hourlyPrice('t3.micro'), 0.0104);
  });

  test('describe reports the instance running with an address; tags add up; terminate ends it', async () => {
    const aws = provider(moto.url);
    const { id } = await aws.create(spec('web-2', 'req-web-2'));
    let machine = await aws.describe(id);
    for (let i = 0; i < 50 && machine.state === 'pending'; i++) machine = (await sleep(100), await aws.describe(id));
    assert.equal(machine.state, 'running');
    assert.match(machine.address!, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(machine.sshPort, 22);
    assert.equal(machine.instanceType, 't3.micro');

    await aws.tag(id, { owner: 'alice', team: 'platform' });
    const tags = (await aws.describe(id)).tags;
    assert.deepEqual([tags.owner, tags.team, tags['berth:name']], ['alice', 'platform', 'web-2']);

    await aws.destroy(id);
    assert.equal((await aws.describe(id)).state, 'terminated');
    await aws.destroy(id); // already gone: not an error
    // An instance EC2 has forgotten (or never had) is terminated too.
    assert.deepEqual(await aws.describe('i-0123456789abcdef0'), { id: 'i-0123456789abcdef0', state: 'terminated', tags: {} });
  });

  test("findByKey and list: the cluster's instances EC2 still holds, by tag", async () => {
    const aws = provider(moto.url);
    const made = await aws.create(spec('web-5', 'req-web-5'));
    assert.deepEqual(
      (await aws.findByKey('req-web-5')).map((m) => m.id),
      [made.id],
    );
    assert.deepEqual(await aws.findByKey('req-nobody'), []);
    const listed = await aws.list();
    assert.ok(listed.some((m) => m.id === made.id));
    assert.ok(listed.every((m) => m.tags['berth:cluster'] === 'cloud' && m.tags['berth:installation'] === 'aws-tests' && m.createdAt !== undefined));
    // Another cluster in the same account and region is not this one's.
    const other = awsProvider(
      { kind: 'aws', region: 'eu-west-1', endpoint: moto.url, imageId, accessKeyId: { env: keyIdEnv }, secretAccessKey: { file: secretFile } },
      { cluster: 'elsewhere', rateCard: { aws: { 't3.micro': 0.0104 } }, installation: 'aws-tests' },
    );
    assert.deepEqual(await other.list(), []);
    // A terminated instance is held no more.
    await aws.destroy(made.id);
    assert.deepEqual(await aws.findByKey('req-web-5'), []);
    assert.ok(!(await aws.list()).some((m) => m.id === made.id));
  });

  test('RequestLimitExceeded is retried by the SDK: the create succeeds through 3 throttled answers', async () => {
    const proxy = await startThrottlingProxy(moto.url, 3);
    try {
      const started = Date.now();
      const machine = await provider(proxy.url).create(spec('web-3', 'req-web-3'));
      console.log(`create through 3 throttled answers took ${Date.now() - started} ms`);
      assert.equal(machine.created, true);
      assert.equal(proxy.throttled, 3);
      assert.equal(proxy.passed, 2, 'DescribeInstances (by key), then RunInstances');
      assert.equal((await instancesWithKey('req-web-3')).length, 1);
    } finally {
      await proxy.close();
    }
  });

  test('throttling beyond the SDK attempts fails retryable (Temporal retries later); a missing secret fails for good', async () => {
    const proxy = await startThrottlingProxy(moto.url, 1000);
    try {
      await assert.rejects(provider(proxy.url).create(spec('web-4', 'req-web-4')), (err: Error & { retryable?: boolean }) => {
        assert.equal(err.name, 'ProviderUnavailable');
        assert.match(err.message, /^EC2 DescribeInstances for idempotency key req-web-4: RequestLimitExceeded: Request limit exceeded\./);
        assert.equal(err.retryable, true);
        return true;
      });
      assert.equal(proxy.throttled, 5, 'the SDK tried 5 times');
    } finally {
      await proxy.close();
    }
    await assert.rejects(provider(moto.url, { env: 'BERTH_TEST_AWS_NO_SUCH_VAR' }).describe('i-0123456789abcdef0'), {
      name: 'ProviderRejected',
      message: 'the AWS access key id is read from env var BERTH_TEST_AWS_NO_SUCH_VAR, which this process does not have',
    });
  });
});
