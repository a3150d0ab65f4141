import { ApplicationFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import { activityTiming } from '../../contracts/activity-timing.ts';
import type { CurrentRelease, ServiceContainer, ServiceSpec } from '../../contracts/services.ts';
import { machineRegistry } from '../../config/load.ts';
import { readSecret } from '../../config/secrets.ts';
import { asTemporalFailure } from '../failures.ts';
import { finishRelease, findMachine, listReleases, recordRelease, setServiceMachine, type NewRelease, type ReleaseOutcome, type ServiceMachineRecord } from '../../inventory/index.ts';
import { serviceSpec } from '../../planning/service-plan.ts';
import type { MachineContext } from '../machine-context.ts';
import { resolveCredentials } from '../registry/credentials.ts';
import { machineEngines } from '../machine-engine/connect.ts';
import { asServiceContainer, containerName, engineStatus, serviceContainers, serviceLabels, stopAndRemove, whenEngineAnswers } from './engine.ts';
import { checkOnce, describeCheck } from './health.ts';

export interface ServiceMachineInput {
  machineId: string;
  service: string;
}

export interface PullServiceImageInput {
  machineId: string;
  /** The machine's cluster: its engine pulls from the cluster IDC's registry. */
  cluster: string;
  repository: string;
  digest: string;
}

export interface StartReplicaInput {
  machineId: string;
  service: ServiceSpec;
  version: string;
  digest: string;
  replica: number;
}

export interface ReplicaHealthInput {
  machineId: string;
  machineName: string;
  service: ServiceSpec;
  container: ServiceContainer;
}

/** A heartbeat this often while an engine works (a pull of a large image, a slow stop). */
const serviceHeartbeatMs = activityTiming.serviceContainers.heartbeat.everyMs;

/**
 * The activities of a service's deploy on a machine's engine (pull, start, health, stop and remove, list), reached
 * with dockerode over SSH from the cluster IDC's worker; and the inventory's record of releases and machines.
 */
export function createServiceActivities(context: MachineContext) {
  const { config, inventory, clusterOf } = context;
  const { withMachineEngine } = machineEngines(context);
  /** Runs `use` on the machine's engine, heartbeating while it lasts; the engine's faults are retried. */
  const onEngine = <T>(machineId: string, use: (docker: Docker) => Promise<T>): Promise<T> => {
    const ctx = Context.current();
    const timer = setInterval(() => ctx.heartbeat(), serviceHeartbeatMs);
    return asTemporalFailure(() => withMachineEngine(machineId, use)).finally(() => clearInterval(timer));
  };
  /** The image by digest at the address the machine's engine reaches its IDC registry. */
  const pullReference = (machineCluster: string, repository: string, digest: string) => {
    const at = machineRegistry(config, clusterOf(machineCluster));
    if (!at) throw ApplicationFailure.nonRetryable(`cluster ${machineCluster}'s IDC has no registry in this worker's config`, 'UnknownRegistry');
    return { ref: `${at.host}/${repository}@${digest}`, ...at };
  };

  return {
    /** The service's containers on a machine (any state), by replica. */
    async listServiceContainers({ machineId, service }: ServiceMachineInput): Promise<ServiceContainer[]> {
      return onEngine(machineId, (docker) => serviceContainers(docker, service));
    },

    /** The machine's engine pulls the image by digest from the IDC registry, with the registry's credentials. */
    async pullServiceImage({ machineId, cluster, repository, digest }: PullServiceImageInput): Promise<{ pulled: boolean }> {
      const { ref, registry: r, host } = pullReference(cluster, repository, digest);
      const credentials = resolveCredentials(r.name, r.credentials);
      return onEngine(machineId, async (docker) => {
        const present = await docker
          .getImage(ref)
          .inspect()
          .then(() => true, whenEngineAnswers([404], false));
        if (present) return { pulled: false };
        const authconfig = credentials ? { username: credentials.username, password: credentials.password, serveraddress: host } : undefined;
        const stream = await docker.pull(ref, { authconfig }).catch((err: Error) => {
          // Not there, or not ours to read: another attempt cannot help.
          if (engineStatus(err) === 404 || /not found|unknown|unauthorized|denied/i.test(err.message)) throw ApplicationFailure.nonRetryable(`${ref}: ${err.message}`, 'ImageUnavailable');
          throw err;
        });
        await new Promise<void>((resolve, reject) =>
          docker.modem.followProgress(
            stream,
            (err) => (err ? reject(err) : resolve()),
            () => Context.current().heartbeat(),
          ),
        );
        return { pulled: true };
      });
    },

    /**
     * Creates and starts one replica of the version, its ports published on ports the engine picks, its env's
     * secrets read here. A retried start finds the container its lost attempt made (by name) and starts it.
     */
    async startServiceReplica({ machineId, service, version, digest, replica }: StartReplicaInput): Promise<ServiceContainer> {
      const { ref } = pullReference(service.cluster, service.repository, digest);
      const env = Object.entries(service.env).map(([k, v]) => `${k}=${'value' in v ? v.value : readSecret(v, `env ${k} of service ${service.name}`)}`);
      const name = containerName(service.name, replica, version);
      return onEngine(machineId, async (docker) => {
        let container = docker.getContainer(name);
        const existing = await container.inspect().catch(whenEngineAnswers([404], undefined));
        if (existing && existing.Config.Labels[serviceLabels.digest] !== digest) {
          // The same tag at another digest: the earlier container goes, this digest's replaces it.
          await container.remove({ force: true });
        }
        if (!existing || existing.Config.Labels[serviceLabels.digest] !== digest) {
          const tcp = service.ports.map((p) => `${p}/tcp`);
          container = await docker.createContainer({
            name,
            Image: ref,
            Env: env,
            Labels: { [serviceLabels.service]: service.name, [serviceLabels.version]: version, [serviceLabels.digest]: digest, [serviceLabels.replica]: String(replica) },
            ExposedPorts: Object.fromEntries(tcp.map((p) => [p, {}])),
            HostConfig: { PortBindings: Object.fromEntries(tcp.map((p) => [p, [{ HostPort: '' }]])), RestartPolicy: { Name: 'unless-stopped' } },
          });
        }
        await container.start().catch(whenEngineAnswers([304], undefined));
        const [listed] = await docker.listContainers({ all: true, filters: { name: [`^/${name}$`] } });
        return asServiceContainer(listed);
      });
    },

    /**
     * Waits until a new replica passes its health check; fails for good, naming the machine, the replica and the
     * check, after `retries` failed checks in a row (or at once when the container stopped).
     */
    async checkReplicaHealth({ machineId, machineName, service, container }: ReplicaHealthInput): Promise<void> {
      const { health } = service;
      const machine = await asTemporalFailure(async () => findMachine(await inventory(), machineId));
      if (!machine?.address) throw ApplicationFailure.nonRetryable(`machine ${machineName} has no address in the inventory`, 'UnknownMachine');
      const ctx = Context.current();
      await onEngine(machineId, async (docker) => {
        let last = '';
        for (let attempt = 1; attempt <= health.retries; attempt++) {
          const problem = await checkOnce(docker, container.id, machine.address!, health);
          if (problem === undefined) return;
          last = problem;
          ctx.heartbeat({ attempt, problem });
          if (/^the container is /.test(problem)) break;
          await ctx.sleep(health.intervalMs);
        }
        throw ApplicationFailure.nonRetryable(`${machineName}: replica ${container.replica} of ${service.name} ${container.version} failed its health check (${describeCheck(health)}): ${last}`, 'HealthCheckFailed', {
          machine: machineName,
          replica: container.replica,
          check: describeCheck(health),
          problem: last,
        });
      });
    },

    /** Stops (10 s grace) and removes containers; ones already gone are not an error. */
    async removeServiceContainers({ machineId, containerIds }: { machineId: string; containerIds: string[] }): Promise<void> {
      await onEngine(machineId, (docker) => stopAndRemove(docker, containerIds));
    },

    /** Stops and removes every service's containers on a machine that is leaving its pool, and records it drained. */
    async drainServices({ machineId }: { machineId: string }): Promise<{ drained: string[] }> {
      const containers = await onEngine(machineId, async (docker) => {
        const all = await docker.listContainers({ all: true, filters: { label: [serviceLabels.service] } });
        await stopAndRemove(
          docker,
          all.map((c) => c.Id),
        );
        return all;
      });
      const drained = [...new Set(containers.map((c) => c.Labels[serviceLabels.service]))];
      for (const service of drained) {
        await asTemporalFailure(async () => setServiceMachine(await inventory(), { service, machineId, version: null, digest: null, containers: [], health: 'drained', detail: 'the machine is being decommissioned' }));
      }
      return { drained };
    },

    /** The services of berth.yaml that run in a pool, each with its current release (its last succeeded); a service never released is left out. */
    async currentReleases({ cluster, pool }: { cluster: string; pool: string }): Promise<CurrentRelease[]> {
      const db = await asTemporalFailure(inventory);
      const out: CurrentRelease[] = [];
      for (const s of config.services.filter((x) => x.cluster === cluster && x.pool === pool)) {
        const last = (await asTemporalFailure(() => listReleases(db, s.name, 100))).find((r) => r.outcome === 'succeeded' && r.digest);
        if (last) out.push({ service: serviceSpec(s), version: last.version, digest: last.digest! });
      }
      return out;
    },

    async recordServiceMachine(record: Omit<ServiceMachineRecord, 'updatedAt'>): Promise<void> {
      await asTemporalFailure(async () => setServiceMachine(await inventory(), record));
    },

    async recordRelease(release: NewRelease): Promise<void> {
      await asTemporalFailure(async () => recordRelease(await inventory(), release));
    },

    async finishRelease({ runId, ...outcome }: { runId: string; outcome: ReleaseOutcome; digest?: string; detail?: string }): Promise<void> {
      await asTemporalFailure(async () => finishRelease(await inventory(), runId, outcome));
    },
  };
}
