import { CreateTagsCommand, DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type Instance, type InstanceStateName, type _InstanceType } from '@aws-sdk/client-ec2';
import { readSecret, type SecretRef } from '../../../config/secrets.ts';
import { createTags, ProviderError, rateCardPrice, reservedTags, type Machine, type MachineSpec, type MachineState, type ProviderFactory } from '../provider.ts';
import { ec2Failure } from './errors.ts';

// EC2 throttles per account and region: a pool scaling up meets RequestLimitExceeded. The SDK's standard retry
// backs off (500 ms base for throttling) and tries again; 5 attempts ride out a burst before the activity fails.
const maxAttempts = 5;

const states: Record<InstanceStateName, MachineState> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopped',
  stopped: 'stopped',
  'shutting-down': 'terminated',
  terminated: 'terminated',
};

function toMachine(i: Instance): Machine {
  const address = i.PublicIpAddress ?? i.PrivateIpAddress;
  return {
    id: i.InstanceId!,
    state: states[i.State!.Name!],
    ...(address !== undefined && { address, sshPort: 22 }),
    instanceType: i.InstanceType,
    ...(i.LaunchTime !== undefined && { createdAt: i.LaunchTime.toISOString() }),
    tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value ?? ''])),
  };
}

/** Instances EC2 still runs or keeps (a terminated one is gone: it holds nothing and costs nothing). */
const held: InstanceStateName[] = ['pending', 'running', 'stopping', 'stopped'];

const ec2Tags = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

const firstInstance = (out: { Reservations?: { Instances?: Instance[] }[] }) => out.Reservations?.flatMap((r) => r.Instances ?? [])[0];

/**
 * cloud-init installs the key: for root, with root logins allowed; for another user, created with passwordless sudo
 * next to the image's default user.
 */
function userData(spec: MachineSpec): string {
  const key = JSON.stringify(spec.sshPublicKey);
  const lines =
    spec.sshUser === 'root'
      ? ['disable_root: false', 'ssh_authorized_keys:', `  - ${key}`]
      : ['users:', '  - default', `  - name: ${spec.sshUser}`, '    sudo: "ALL=(ALL) NOPASSWD:ALL"', '    shell: /bin/bash', '    ssh_authorized_keys:', `      - ${key}`];
  return Buffer.from(['#cloud-config', ...lines, ''].join('\n')).toString('base64');
}

/** Resolved inside the worker on first use, never before: the keys stay references in config and history. */
function secret(ref: SecretRef, what: string): string {
  try {
    return readSecret(ref, what);
  } catch (err) {
    throw new ProviderError('ProviderRejected', (err as Error).message, { cause: err });
  }
}

/** EC2, or an EC2-compatible endpoint (moto in the tests). The machine's id is its instance id. */
export const awsProvider: ProviderFactory<'aws'> = (config, { cluster, rateCard, installation }) => {
  const ec2 = new EC2Client({
    region: config.region,
    ...(config.endpoint !== undefined && { endpoint: config.endpoint }),
    maxAttempts,
    retryMode: 'standard',
    credentials: async () => ({ accessKeyId: secret(config.accessKeyId, 'the AWS access key id'), secretAccessKey: secret(config.secretAccessKey, 'the AWS secret access key') }),
  });
  const send = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      throw ec2Failure(err, what);
    }
  };
  /** The cluster's instances EC2 still holds, with these tags too, every page. */
  const instances = async (what: string, tags: Record<string, string> = {}): Promise<Machine[]> => {
    const filters = [{ Name: 'instance-state-name', Values: held }, ...Object.entries({ [reservedTags.cluster]: cluster, ...tags }).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }))];
    const found: Machine[] = [];
    let NextToken: string | undefined;
    do {
      const out = await send(what, () => ec2.send(new DescribeInstancesCommand({ Filters: filters, NextToken })));
      found.push(...(out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map(toMachine));
      NextToken = out.NextToken;
    } while (NextToken);
    return found;
  };
  // The tag makes a repeated create find its instance (and say it did not create it). RunInstances' ClientToken
  // covers what the tag cannot: a repeat so soon after a lost answer that DescribeInstances does not list it yet.
  const findByKey = (key: string) => instances(`DescribeInstances for idempotency key ${key}`, { [reservedTags.idempotencyKey]: key });
  return {
    kind: 'aws',
    async create(spec) {
      const [found] = await findByKey(spec.idempotencyKey);
      if (found) return { ...found, created: false };
      const out = await send(`RunInstances ${spec.name}`, () =>
        ec2.send(
          new RunInstancesCommand({
            ClientToken: spec.idempotencyKey,
            ImageId: config.imageId,
            InstanceType: spec.instanceType as _InstanceType,
            MinCount: 1,
            MaxCount: 1,
            ...(config.subnetId !== undefined && { SubnetId: config.subnetId }),
            UserData: userData(spec),
            TagSpecifications: [{ ResourceType: 'instance', Tags: ec2Tags({ Name: spec.name, ...createTags(spec, installation) }) }],
          }),
        ),
      );
      return { ...toMachine(out.Instances![0]), created: true };
    },
    findByKey,
    list: () => instances(`DescribeInstances of cluster ${cluster}`),
    async describe(id) {
      try {
        const out = await send(`DescribeInstances ${id}`, () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })));
        const instance = firstInstance(out);
        return instance ? toMachine(instance) : { id, state: 'terminated', tags: {} };
      } catch (err) {
        // EC2 forgets terminated instances after about an hour.
        if (err instanceof ProviderError && err.type === 'MachineNotFound') return { id, state: 'terminated', tags: {} };
        throw err;
      }
    },
    async destroy(id) {
      try {
        await send(`TerminateInstances ${id}`, () => ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })));
      } catch (err) {
        if (!(err instanceof ProviderError && err.type === 'MachineNotFound')) throw err;
      }
    },
    async tag(id, tags) {
      await send(`CreateTags ${id}`, () => ec2.send(new CreateTagsCommand({ Resources: [id], Tags: ec2Tags(tags) })));
    },
    hourlyPrice: (instanceType) => rateCardPrice(rateCard, 'aws', instanceType),
  };
};
