import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ReconcileReport } from '../../activities/reconcile/index.ts';
import { idcTaskQueue, type Cluster } from '../../config/load.ts';
import { adoptOrphan, destroyOrphan, reconcileInventory } from '../../workflows/reconcile-inventory.ts';
import { BerthCluster } from '../../contracts/search-attributes.ts';
import { projectOfCluster } from '../auth/access.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { reconcileLabels, reconcileScheduleId, reconcileWorkflowId } from '../reconcile-schedules.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { startAndReply } from '../start-workflow.ts';
import { machineLabels, name } from './machines.ts';

// A container id, an EC2 instance id, a static host's name.
const providerId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a provider id: letters, digits and ._- (1-128 chars)');

/**
 * Reconciliation of a cluster's provider with the inventory: run one now, read the last report, and the two
 * remedies for an orphan (adopt it into a pool, or destroy it), each a workflow on the main worker.
 */
export function reconciliationRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config, client } = deps;
  const clusterOf = (n: string): Cluster | undefined => config.clusters.find((c) => c.name === n);
  const project = ({ params }: { params: Record<string, string> }) => projectOfCluster(config, params.cluster);
  const noCluster = (n: string) => `no cluster "${n}"`;
  /** The cluster and provider id an orphan's route names; undefined once it has answered 404 or 400 instead. */
  const orphanOf = (reply: FastifyReply, params: Record<string, string>) => {
    const cluster = clusterOf(params.cluster);
    if (!cluster) return void sendNotFound(reply, noCluster(params.cluster), 'cluster');
    const id = providerId.safeParse(params.providerId);
    if (!id.success) return void sendInvalid(reply, [{ ...id.error.issues[0], path: ['providerId'] }]);
    return { cluster, providerId: id.data };
  };

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/clusters/:cluster/reconcile',
    summary: "Hold the cluster's machines at its provider against the inventory now (the schedule does it every reconcileEvery)",
    tag: 'machines',
    access: { role: 'developer' },
    project,
    handler: async ({ reply, params, principal }) => {
      if (!clusterOf(params.cluster)) return sendNotFound(reply, noCluster(params.cluster), 'cluster');
      return startAndReply(reply, deps, reconcileInventory, {
        workflowId: reconcileWorkflowId(params.cluster),
        args: [{ cluster: params.cluster }],
        summary: `reconcile cluster ${params.cluster} with its provider`,
        startedBy: principal.name,
        labels: reconcileLabels(config, params.cluster),
      });
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/clusters/:cluster/reconciliation',
    summary: 'The report of the last reconciliation of the cluster (orphans, ghosts, drift, their cost) and when the next one is due',
    tag: 'machines',
    access: { role: 'guest' },
    project,
    handler: async ({ reply, params }) => {
      if (!clusterOf(params.cluster)) return sendNotFound(reply, noCluster(params.cluster), 'cluster');
      const query = `WorkflowType = 'reconcileInventory' AND ${BerthCluster.name} = '${params.cluster}' AND ExecutionStatus = 'Completed' AND TaskQueue = '${config.taskQueues.main}'`;
      // Visibility lists the newest runs first, and runs of one cluster never overlap (the schedule skips): the
      // first page holds the last one. Reading on would read every run of the schedule's whole life.
      let last: { workflowId: string; runId: string; closeTime: Date } | undefined;
      let read = 0;
      for await (const w of client.workflow.list({ query, pageSize: 20 })) {
        if (w.closeTime && (!last || w.closeTime > last.closeTime)) last = { workflowId: w.workflowId, runId: w.runId, closeTime: w.closeTime };
        if (++read === 20) break;
      }
      const next = await client.schedule
        .getHandle(reconcileScheduleId(params.cluster))
        .describe()
        .then(
          (d) => d.info.nextActionTimes[0] ?? null,
          () => null,
        );
      if (!last) return sendNotFound(reply, `no reconciliation of cluster ${params.cluster} has completed yet: POST /v1/clusters/${params.cluster}/reconcile runs one`);
      const report = (await client.workflow.getHandle(last.workflowId, last.runId).result()) as ReconcileReport;
      return { workflowId: last.workflowId, nextRun: next, report };
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/clusters/:cluster/orphans/:providerId/destroy',
    summary: 'Destroy an orphan (a machine of the cluster at its provider that no machine of the inventory accounts for)',
    tag: 'machines',
    access: { role: 'admin' },
    project,
    handler: async ({ reply, params, principal }) => {
      const orphan = orphanOf(reply, params);
      if (!orphan) return reply;
      const { cluster, providerId: id } = orphan;
      return startAndReply(reply, deps, destroyOrphan, {
        workflowId: `destroy-orphan:${cluster.name}/${id}`,
        args: [{ cluster: cluster.name, providerId: id }],
        summary: `destroy orphan ${id} of cluster ${cluster.name}`,
        startedBy: principal.name,
        labels: machineLabels(config, cluster),
      });
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/clusters/:cluster/orphans/:providerId/adopt',
    summary: "Adopt an orphan into a pool (its tags' pool and name unless given): provisioned from SSH on as a new machine; destroyed if that fails",
    tag: 'machines',
    body: z.object({ pool: name.optional(), name: name.optional() }).strict(),
    access: { role: 'admin' },
    project,
    handler: async ({ reply, params, body, principal }) => {
      const orphan = orphanOf(reply, params);
      if (!orphan) return reply;
      const { cluster, providerId: id } = orphan;
      if (body.pool && !cluster.pools.some((p) => p.name === body.pool)) return sendNotFound(reply, `cluster ${cluster.name} has no pool "${body.pool}"`, 'pool');
      return startAndReply(reply, deps, adoptOrphan, {
        workflowId: `adopt-orphan:${cluster.name}/${id}`,
        args: [{ cluster: cluster.name, providerId: id, ...body, idcTaskQueue: idcTaskQueue(config, cluster.idc) }],
        summary: `adopt orphan ${id} into cluster ${cluster.name}`,
        startedBy: principal.name,
        labels: machineLabels(config, cluster),
      });
    },
  });
}
