import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { dockerProvider } from '../activities/cloud/docker/index.ts';
import { reservedTags, type CloudProvider, type Machine, type MachineSpec } from '../activities/cloud/provider.ts';
import { generateSshKeyPair } from '../activities/hosts/private-key.ts';
import { connectWhenReady, type SshSession } from '../activities/hosts/session.ts';
import { ensureDockerEngine, type DockerEngine } from '../embedded/docker-engine.ts';
import { ensureHostImage, type HostImage } from '../embedded/host-image.ts';
import { recordSecret } from './secrets.ts';

let ready: Promise<DockerEngine & { image: HostImage }> | undefined;

/** The Docker engine and the host image, once per test process (the first build ever takes about 40 s). */
export function hostEngine(): Promise<DockerEngine & { image: HostImage }> {
  ready ??= ensureDockerEngine().then(async (engine) => ({ ...engine, image: await ensureHostImage(engine.docker) }));
  return ready;
}

/** A fresh ed25519 key pair in OpenSSH formats. */
export function sshKeyPair(comment = 'berth-test'): { privateKey: string; publicKey: string } {
  const pair = generateSshKeyPair(comment);
  recordSecret(pair.privateKey);
  return pair;
}

/** A cluster name of its own per test file: parallel files and leftovers of earlier runs never collide. */
export function testClusterName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export const testRateCard = { docker: { small: 0.012, large: 0.05 } };

/** The installation id of providers the tests build themselves (a berth installation's comes from its inventory). */
export const testInstallation = 'berth-tests';

export async function testDockerProvider(cluster: string, opts: { image?: string; installation?: string; socketPath?: string } = {}): Promise<CloudProvider> {
  const engine = await hostEngine();
  return dockerProvider({ kind: 'docker', socketPath: opts.socketPath ?? engine.socketPath, image: opts.image ?? engine.image.tag }, { cluster, rateCard: testRateCard, installation: opts.installation ?? testInstallation });
}

/**
 * A cluster (config) of the docker provider on the tests' engine: one pool `web` of `small` machines set up by
 * `initProfile`, reached as root with the private key in the environment variable `keyEnv`.
 */
export async function testDockerCluster(name: string, idc: string, keyEnv: string, initProfile: string) {
  const engine = await hostEngine();
  return {
    name,
    idc,
    provider: { kind: 'docker', socketPath: engine.socketPath, image: engine.image.tag },
    ssh: { user: 'root', privateKey: { env: keyEnv } },
    pools: [{ name: 'web', instanceType: 'small', initProfile }],
  };
}

export function machineSpec(cluster: string, name: string, publicKey: string, more: Partial<MachineSpec> = {}): MachineSpec {
  return { cluster, pool: 'web', name, instanceType: 'small', idempotencyKey: `${cluster}/web/${name}`, tags: {}, sshUser: 'root', sshPublicKey: publicKey, ...more };
}

export interface TestHost {
  machine: Machine;
  user: string;
  privateKey: string;
  /** A session as `user`; the host key it saw is `session.hostKeyFingerprint`. */
  session: SshSession;
}

/** A machine from the docker provider, running, with an SSH session as its user. */
export async function testHost(provider: CloudProvider, spec: MachineSpec, privateKey: string): Promise<TestHost> {
  const created = await provider.create(spec);
  const session = await connectWhenReady({ address: created.address!, port: created.sshPort!, user: spec.sshUser, privateKey }, { timeoutMs: 30_000 });
  return { machine: created, user: spec.sshUser, privateKey, session };
}

/** Removes every container of a test cluster (the `after` of each test file). */
export async function removeCluster(docker: Docker, cluster: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${reservedTags.cluster}=${cluster}`] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
}
