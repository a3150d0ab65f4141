import Docker from 'dockerode';
import { createTags, madeBy, ProviderError, rateCardPrice, reservedTags, type CloudProvider, type Machine, type MachineState, type ProviderFactory } from '../provider.ts';
import { machineSeccompProfile } from './seccomp.ts';
import { allocateSshPort, machineAddress } from './ssh-port.ts';
import { readTagsFile, writeTagsFile } from './tags-file.ts';

// Labels only this provider sets, next to the reserved ones every provider sets.
const sshPortLabel = 'berth:ssh-port';
// Machines made before each had an address of its own are on 127.0.0.1.
const addressLabel = 'berth:address';
const instanceTypeLabel = 'berth:instance-type';

const states: Record<string, MachineState> = {
  created: 'pending',
  restarting: 'pending',
  running: 'running',
  paused: 'stopped',
  exited: 'stopped',
  removing: 'terminated',
  dead: 'terminated',
};

// Port choice and container create happen one at a time in this process, so that two creates never pick the same
// port before either container carries it in its labels.
let serial: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = serial.then(fn, fn);
  serial = run.catch(() => undefined);
  return run;
}

/** A container as the engine lists it, seen as a machine (labels only: the tags file is read by describe). */
function listed(c: Docker.ContainerInfo): Machine {
  const labels = c.Labels ?? {};
  return {
    id: c.Id,
    state: states[c.State] ?? 'pending',
    address: labels[addressLabel] ?? '127.0.0.1',
    sshPort: labels[sshPortLabel] ? Number(labels[sshPortLabel]) : undefined,
    instanceType: labels[instanceTypeLabel],
    createdAt: new Date(c.Created * 1000).toISOString(),
    tags: labels,
  };
}

/**
 * Machines are containers of the host image (embedded/host-image.ts) on a Docker engine (dockerode), each a machine
 * of its own as far as the network and cgroups go: its sshd and everything started over SSH live in a network
 * namespace of the machine's (user-mode networking by slirp4netns) and the container has a private cgroup
 * namespace, so sysctls, routes and cgroups set on one machine stay on it. Each machine has a loopback address of
 * its own on the engine's host (127.1.x.y), where its sshd and every port it listens on are published: a Docker
 * engine inside (the docker init step starts one) publishes its containers' ports there, as on a VM. The container
 * keeps SYS_ADMIN and NET_ADMIN: a development and test stand-in, not a security boundary. The engine must be on
 * the worker's machine: the addresses it reports are loopback ones.
 */
export const dockerProvider: ProviderFactory<'docker'> = (config, context): CloudProvider => {
  const docker = new Docker({ socketPath: config.socketPath });
  const containerName = (machine: string) => `berth-${context.cluster}-${machine}`;
  const ofCluster = `${reservedTags.cluster}=${context.cluster}`;

  /** The cluster's containers with these labels too, in any state: even a dead one holds its name until removed. */
  const containers = async (...labels: string[]): Promise<Machine[]> => {
    const found = await docker.listContainers({ all: true, filters: { label: [ofCluster, ...labels] } }).catch(fail('list containers'));
    return found.map(listed);
  };
  const findByKey = (key: string) => containers(`${reservedTags.idempotencyKey}=${key}`);

  const takenPorts = async (): Promise<Set<number>> => {
    const all = await docker.listContainers({ all: true, filters: { label: [sshPortLabel] } }).catch(fail('list containers'));
    return new Set(all.map((c) => Number(c.Labels[sshPortLabel])));
  };

  const describe = async (id: string): Promise<Machine> => {
    const container = docker.getContainer(id);
    const info = await container.inspect().catch((err) => (status(err) === 404 ? undefined : fail(`inspect container ${id}`)(err)));
    if (!info) return { id, state: 'terminated', tags: {} };
    const state = states[info.State.Status] ?? 'pending';
    const labels = info.Config.Labels ?? {};
    const added = state === 'terminated' ? {} : await readTagsFile(container).catch((err) => (status(err) === 404 ? {} : fail(`read the tags of container ${id}`)(err)));
    return {
      id: info.Id,
      state,
      address: labels[addressLabel] ?? '127.0.0.1',
      sshPort: labels[sshPortLabel] ? Number(labels[sshPortLabel]) : undefined,
      instanceType: labels[instanceTypeLabel],
      createdAt: new Date(info.Created).toISOString(),
      tags: { ...labels, ...added },
    };
  };

  /** The name is held by a container no request with this key made: say whose it is, for the caller's remedy. */
  const nameClash = async (name: string, machine: string): Promise<never> => {
    const holder = await describe(name);
    throw new ProviderError('NameClash', `cluster ${context.cluster} already has a machine named ${machine} on the Docker engine: container ${name} (${holder.id}, ${holder.state}), made by ${madeBy(holder)}`, { holder });
  };

  return {
    kind: 'docker',

    create: (spec) =>
      oneAtATime(async () => {
        const [existing] = await findByKey(spec.idempotencyKey);
        if (existing) {
          // An earlier attempt may have died between create and start.
          const container = docker.getContainer(existing.id);
          if ((await container.inspect().catch(fail(`inspect container ${existing.id}`))).State.Status === 'created') {
            await container
              .start()
              .catch(ignore(304))
              .catch(fail(`start container ${existing.id}`));
          }
          return { ...(await describe(existing.id)), created: false };
        }
        const name = containerName(spec.name);
        const port = await allocateSshPort(name, await takenPorts());
        const container = await docker
          .createContainer({
            name,
            Image: config.image,
            Env: [`BERTH_SSH_PORT=${port}`, `BERTH_ADDRESS=${machineAddress(port)}`, `BERTH_SSH_USER=${spec.sshUser}`, `BERTH_AUTHORIZED_KEY=${spec.sshPublicKey}`],
            // The inner engine's storage: overlay2 cannot stack on the container's own overlay root, but can on a
            // volume (anonymous: removed with the machine).
            Volumes: { '/var/lib/docker': {} },
            Labels: { ...createTags(spec, context.installation), [sshPortLabel]: String(port), [addressLabel]: machineAddress(port), [instanceTypeLabel]: spec.instanceType },
            HostConfig: {
              // PID 1 stays in the engine host's network namespace, where slirp4netns reaches the outside and
              // publishes sshd; the machine itself (sshd and every session) runs in a namespace of its own.
              NetworkMode: 'host',
              // The engine's API has it since 1.41; dockerode's types do not yet.
              ...({ CgroupnsMode: 'private' } as object),
              // slirp4netns makes the machine's tap device.
              Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
              // The engine inside: runc needs keyctl, which Docker's default profile refuses.
              SecurityOpt: [`seccomp=${machineSeccompProfile}`],
              // What a host needs (hostname, sysctl, mounts, its network) without --privileged, which this kernel refuses.
              CapAdd: ['NET_ADMIN', 'SYS_ADMIN'],
              // `--security-opt systempaths=unconfined` of the CLI, which the API spells as no masked or read-only paths.
              MaskedPaths: [],
              ReadonlyPaths: [],
              // A machine comes back when its engine does, as a VM does after a reboot.
              RestartPolicy: { Name: 'unless-stopped' },
            },
          })
          .catch(async (err) => {
            if (status(err) === 409) {
              if ((await findByKey(spec.idempotencyKey)).length > 0) return undefined;
              return nameClash(name, spec.name);
            }
            if (status(err) === 404) throw new ProviderError('ProviderRejected', `image ${config.image} is not on the Docker engine at ${config.socketPath}: build it with ensureHostImage (embedded/host-image.ts; npm start does)`);
            return fail(`create container ${name}`)(err);
          });
        // Lost the race to a create with the same key: that container is the machine.
        const id = container?.id ?? (await findByKey(spec.idempotencyKey))[0].id;
        await docker
          .getContainer(id)
          .start()
          .catch(ignore(304))
          .catch(fail(`start container ${name}`));
        return { ...(await describe(id)), created: container !== undefined };
      }),

    findByKey,

    list: () => containers(),

    describe,

    async destroy(id) {
      // 404: already gone; 409: its removal is already under way.
      await docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch(ignore(404, 409))
        .catch(fail(`remove container ${id}`));
    },

    async tag(id, tags) {
      const container = docker.getContainer(id);
      const current = await readTagsFile(container).catch((err) => {
        if (status(err) === 404) throw new ProviderError('MachineNotFound', `no machine ${id} on the Docker engine at ${config.socketPath}`);
        return fail(`read the tags of container ${id}`)(err);
      });
      await writeTagsFile(container, { ...current, ...tags }).catch(fail(`write the tags of container ${id}`));
    },

    hourlyPrice: (instanceType) => rateCardPrice(context.rateCard, 'docker', instanceType),
  };
};

const status = (err: unknown) => (err as { statusCode?: number }).statusCode;

function ignore(...statuses: number[]) {
  return (err: unknown) => {
    if (!statuses.includes(status(err) ?? 0)) throw err;
  };
}

/** The engine's answer, classified: no answer or a 5xx is worth retrying; a 4xx is the request as made. */
function fail(what: string) {
  return (err: unknown): never => {
    if (err instanceof ProviderError) throw err;
    const code = status(err);
    const detail = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
    throw new ProviderError(code !== undefined && code < 500 ? 'ProviderRejected' : 'ProviderUnavailable', `${what}: ${detail}`, { cause: err });
  };
}
