import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { haGroupPlan } from '../config/ha-plan.ts';
import type { BerthConfig } from '../config/load.ts';
import { reconfigureSignal, registryGuard } from '../workflows/registry-guard.ts';
import { searchAttributes } from './start-workflow.ts';

export const guardId = (group: string) => `registry-guard:${group}`;

/**
 * On start: one running `registryGuard` per HA group in berth.yaml. A guard that runs already keeps its state
 * (which side is active, its events) and receives the group's current config; guards of removed groups stop.
 */
export async function ensureRegistryGuards(client: Client, config: BerthConfig): Promise<void> {
  for (const group of config.haGroups) {
    const plan = haGroupPlan(config, group);
    const handle = await client.workflow.start(registryGuard, {
      taskQueue: config.taskQueues.main,
      workflowId: guardId(group.name),
      args: [{ plan }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: searchAttributes({ kind: 'ha-guard', project: group.project, idcs: plan.vantagePoints.map((v) => v.idc) }),
      staticSummary: `guard HA group ${group.name}: ${group.primary} (primary), ${group.secondary} behind ${group.endpoint.url}`,
    });
    await handle.signal(reconfigureSignal, plan);
  }
  const query = `WorkflowType = 'registryGuard' AND ExecutionStatus = 'Running' AND TaskQueue = '${config.taskQueues.main}'`;
  for await (const running of client.workflow.list({ query })) {
    if (config.haGroups.some((g) => guardId(g.name) === running.workflowId)) continue;
    await client.workflow
      .getHandle(running.workflowId)
      .terminate('its HA group is no longer in berth.yaml')
      .catch((err) => {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      });
  }
}
