import type { DeployServiceInput, ServiceSpec } from '../contracts/services.ts';
import { idcTaskQueue, type BerthConfig } from '../config/load.ts';
import type { Service } from '../config/schema.ts';
import { durationMs } from './ha-plan.ts';
import { distributionPlan } from './idc-tree.ts';

/** A service of berth.yaml as its deploys see it: durations in milliseconds, env secrets still references. */
export function serviceSpec(s: Service): ServiceSpec {
  const { http, command, interval, timeout, retries } = s.health;
  return {
    name: s.name,
    project: s.project,
    repository: s.image,
    cluster: s.cluster,
    pool: s.pool,
    replicas: s.replicas,
    ports: s.ports,
    env: s.env,
    health: { ...(http ? { http } : { command: command! }), intervalMs: durationMs(interval), timeoutMs: durationMs(timeout), retries },
    maxUnavailable: s.maxUnavailable,
    maxSurge: s.maxSurge,
    approval: s.approval,
  };
}

/**
 * What a deploy of `version` needs, resolved from berth.yaml: the cluster IDC's registry the machines pull from,
 * and the IDC tree that brings the image there from the master when it is missing.
 */
export function deployServiceInput(config: BerthConfig, s: Service, version: string, requestedBy: string, reason: DeployServiceInput['reason'] = 'deploy'): DeployServiceInput {
  const cluster = config.clusters.find((c) => c.name === s.cluster)!;
  const registry = config.registries.find((r) => r.idc === cluster.idc)!;
  const roots = config.idcs.filter((i) => i.parent === undefined);
  // The schema checked that the cluster's IDC has a registry; the tree has one root unless berth.yaml has several.
  const distribution = roots.length === 1 && roots[0].name !== cluster.idc ? distributionPlan(config) : undefined;
  return {
    service: serviceSpec(s),
    version,
    registry: { registry: registry.name, idc: cluster.idc, taskQueue: idcTaskQueue(config, cluster.idc) },
    ...(distribution ? { distribution } : {}),
    idcTaskQueue: idcTaskQueue(config, cluster.idc),
    requestedBy,
    reason,
  };
}
