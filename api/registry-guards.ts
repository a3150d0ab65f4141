import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { haGroupPlan } from '../planning/ha-plan.ts';
import type { BerthConfig, HaGroup } from '../config/load.ts';
import { reconfigureSignal } from '../contracts/ha.ts';
import { registryGuard } from '../workflows/registry-guard.ts';
import { searchAttributes } from './start-workflow.ts';

export const guardId = (group: string) => `registry-guard:${group}`;

/**
 * A group's guard, started if it does not run (a new one reads where the endpoint points and takes that as its
 * state), and given the group's current config.
 */
async function startGuard(client: Client, config: BerthConfig, group: HaGroup): Promise<void> {
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

/**
 * On start: one running `registryGuard` per HA group in berth.yaml. A guard that runs already keeps its state
 * (which side is active, its events) and receives the group's current config; guards of removed groups stop.
 */
export async function ensureRegistryGuards(client: Client, config: BerthConfig): Promise<void> {
  for (const group of config.haGroups) await startGuard(client, config, group);
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

/** The status of a group's guard (its latest run): RUNNING, TERMINATED, ...; NOT_FOUND when it never ran. */
export async function guardStatus(client: Client, group: string): Promise<string> {
  return client.workflow
    .getHandle(guardId(group))
    .describe()
    .then(
      (d) => d.status.name,
      (err) => {
        if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
        throw err;
      },
    );
}

/**
 * While the API runs, a guard that stopped (terminated, cancelled by a platform admin, failed) is started again
 * within `everyMs`: an HA group is never left unwatched. Several APIs may do this at once: a start joins a running guard.
 */
export function keepRegistryGuards(client: Client, config: BerthConfig, everyMs = 30_000): { close(): Promise<void> } {
  const restartStopped = async () => {
    for (const group of config.haGroups) {
      if ((await guardStatus(client, group.name)) !== 'RUNNING') await startGuard(client, config, group);
    }
  };
  // Temporal out of reach for a moment: the next round tries again.
  const timer = setInterval(() => void restartStopped().catch(() => undefined), everyMs);
  timer.unref();
  return { close: async () => clearInterval(timer) };
}
