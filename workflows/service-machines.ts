import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { activityOptions, activityTiming } from '../contracts/activity-timing.ts';
import type { ServiceContainer, ServiceSpec } from '../contracts/services.ts';
import { describeFailure } from './failures.ts';

/** Where a machine is going: a version at a digest. */
export interface Target {
  version: string;
  digest: string;
}

/** A machine of the service's pool: its inventory id and its name. */
export interface ServiceMachine {
  machineId: string;
  name: string;
}

/**
 * A service's containers on its pool's machines, reached from the cluster IDC's task queue: what deployService
 * rolls batch by batch and scalePool places on a new machine.
 */
export function serviceMachines(service: ServiceSpec, idcTaskQueue: string) {
  const { recordServiceMachine } = proxyActivities<Activities>(activityOptions(activityTiming.serviceRecord));
  const engine = (summary: string, startToCloseTimeout: string) => proxyActivities<Activities>(activityOptions(activityTiming.serviceContainers, { taskQueue: idcTaskQueue, startToCloseTimeout, summary }));
  // Each check waits its interval between tries: the activity's time is what its retries may take, and a minute more.
  const healthMs = service.health.retries * (service.health.intervalMs + service.health.timeoutMs) + 60_000;
  const { listServiceContainers } = engine(`list ${service.name}`, '1 minute');

  /**
   * Brings one machine to `to`, replica by replica (`image` names the pull); `surge`: each new replica starts
   * before its old one stops. `onReplica` counts each one replaced; the machine's record says how it ended.
   */
  const roll = async ({ machineId, name }: ServiceMachine, image: string, to: Target, surge: boolean, onReplica: () => void) => {
    const { pullServiceImage } = engine(`pull ${image} on ${name}`, '15 minutes');
    const { startServiceReplica, removeServiceContainers } = engine(`${service.name} ${to.version} on ${name}`, '2 minutes');
    const { checkReplicaHealth } = engine(`health of ${service.name} ${to.version} on ${name}`, `${healthMs} ms`);
    await pullServiceImage({ machineId, cluster: service.cluster, repository: service.repository, digest: to.digest });
    const before = await listServiceContainers({ machineId, service: service.name });
    const replicas: ServiceContainer[] = [];
    try {
      for (let replica = 0; replica < service.replicas; replica++) {
        const old = before.filter((c) => c.replica === replica && c.digest !== to.digest).map((c) => c.id);
        if (!surge && old.length > 0) await removeServiceContainers({ machineId, containerIds: old });
        const started = await startServiceReplica({ machineId, service, version: to.version, digest: to.digest, replica });
        replicas.push(started);
        await checkReplicaHealth({ machineId, machineName: name, service, container: started });
        if (surge && old.length > 0) await removeServiceContainers({ machineId, containerIds: old });
        onReplica();
      }
      // Replicas above the wanted number (the service was scaled down) go once the wanted ones serve.
      const extra = before.filter((c) => c.replica >= service.replicas).map((c) => c.id);
      if (extra.length > 0) await removeServiceContainers({ machineId, containerIds: extra });
      await recordServiceMachine({ service: service.name, machineId, version: to.version, digest: to.digest, containers: replicas, health: 'healthy', detail: null });
    } catch (err) {
      if (!isCancellation(err)) await recordServiceMachine({ service: service.name, machineId, version: to.version, digest: to.digest, containers: replicas, health: 'unhealthy', detail: describeFailure(err) });
      throw err;
    }
  };

  /** Takes every container of the service off a machine, and records it without the service (`detail` says why). */
  const clear = async ({ machineId, name }: ServiceMachine, version: string, health: 'healthy' | 'unhealthy', detail: string) => {
    const { removeServiceContainers } = engine(`remove ${service.name} ${version} from ${name}`, '2 minutes');
    const mine = (await listServiceContainers({ machineId, service: service.name })).map((c) => c.id);
    await removeServiceContainers({ machineId, containerIds: mine });
    await recordServiceMachine({ service: service.name, machineId, version: null, digest: null, containers: [], health, detail });
  };

  return { listServiceContainers, roll, clear };
}
