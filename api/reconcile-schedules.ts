import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { BerthConfig, Cluster } from '../config/load.ts';
import { reconcileInventory } from '../workflows/reconcile-inventory.ts';
import { projectOfCluster } from './auth/access.ts';
import { searchAttributes } from './start-workflow.ts';

const prefix = 'reconcile-inventory:';
export const reconcileScheduleId = (cluster: string) => `${prefix}${cluster}`;
/** The workflow ID of a reconciliation asked for through the API; a scheduled run's is this plus its time. */
export const reconcileWorkflowId = (cluster: string) => `reconcile:${cluster}`;

export const reconcileLabels = (config: BerthConfig, cluster: string) => ({ kind: 'reconcile', project: projectOfCluster(config, cluster), cluster });

function schedule(config: BerthConfig, cluster: Cluster) {
  return {
    spec: { intervals: [{ every: cluster.reconcileEvery as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
    action: {
      type: 'startWorkflow' as const,
      workflowType: reconcileInventory,
      workflowId: reconcileWorkflowId(cluster.name),
      taskQueue: config.taskQueues.main,
      args: [{ cluster: cluster.name }] as [{ cluster: string }],
      staticSummary: `reconcile cluster ${cluster.name} with its provider`,
      typedSearchAttributes: searchAttributes(reconcileLabels(config, cluster.name)),
    },
  };
}

/**
 * On start: one Temporal Schedule of `reconcileInventory` per cluster in berth.yaml, created or brought in line
 * with it (a pause set by an operator stays); this installation's schedules of clusters that left the file are
 * deleted.
 */
export async function keepReconcileSchedules(client: Client, config: BerthConfig): Promise<{ created: string[]; updated: string[]; deleted: string[] }> {
  const result = { created: [] as string[], updated: [] as string[], deleted: [] as string[] };
  for (const cluster of config.clusters) {
    const { spec, action } = schedule(config, cluster);
    try {
      await client.schedule.getHandle(reconcileScheduleId(cluster.name)).update((prev) => ({ ...prev, spec, action }));
      result.updated.push(cluster.name);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create({
        scheduleId: reconcileScheduleId(cluster.name),
        spec,
        action,
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
        // Whose schedule it is: installations (and test runs) sharing a namespace keep their hands off each other's.
        memo: { taskQueue: config.taskQueues.main },
      });
      result.created.push(cluster.name);
    }
  }
  for await (const s of client.schedule.list()) {
    const cluster = s.scheduleId.startsWith(prefix) ? s.scheduleId.slice(prefix.length) : undefined;
    if (cluster === undefined || s.memo?.taskQueue !== config.taskQueues.main || config.clusters.some((c) => c.name === cluster)) continue;
    await client.schedule
      .getHandle(s.scheduleId)
      .delete()
      .catch((err) => {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
      });
    result.deleted.push(cluster);
  }
  return result;
}
