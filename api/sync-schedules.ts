import { ScheduleOverlapPolicy, type Client, type ScheduleSpec } from '@temporalio/client';
import { workflowProjects } from '../codec/workflow-projects.ts';
import type { BerthConfig, SyncRule } from '../config/load.ts';
import { syncPlan } from '../planning/sync-plan.ts';
import { describeSyncSchedule, scheduleId, syncScheduleNames, type RuleOrigin } from '../schedules/sync-rules.ts';
import { syncRegistries } from '../workflows/sync-registries.ts';
import { searchAttributes } from './start-workflow.ts';

function spec(rule: SyncRule): ScheduleSpec {
  return 'every' in rule.schedule ? { intervals: [{ every: rule.schedule.every as `${number}${'s' | 'm' | 'h' | 'd'}` }] } : { cronExpressions: [rule.schedule.cron] };
}

function action(config: BerthConfig, rule: SyncRule, origin: RuleOrigin) {
  const workflowId = `sync:${rule.name}`;
  // The runs' payloads are labelled with the rule's project, as those of workflows the API starts (codec/).
  if (rule.project) workflowProjects.remember(workflowId, rule.project);
  return {
    type: 'startWorkflow' as const,
    workflowType: syncRegistries,
    // Temporal appends each run's time, so every run has its own ID under this one.
    workflowId,
    taskQueue: config.taskQueues.main,
    args: [syncPlan(config, rule)] as [ReturnType<typeof syncPlan>],
    staticSummary: `sync rule ${rule.name}`,
    // The rule as written lives here, where an update can change it (a schedule's own memo cannot be).
    memo: { rule, origin },
    typedSearchAttributes: searchAttributes({ kind: 'sync', project: rule.project }),
  };
}

/** Creates a rule's schedule: overlapping runs are skipped, not queued. Throws if it exists. */
export async function createSyncSchedule(client: Client, config: BerthConfig, rule: SyncRule, origin: RuleOrigin): Promise<void> {
  await client.schedule.create({
    scheduleId: scheduleId(rule.name),
    spec: spec(rule),
    action: action(config, rule, origin),
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    state: { paused: rule.paused, note: rule.paused ? 'paused in its rule' : undefined },
    // Whose schedule it is: installations (and test runs) sharing a namespace keep their hands off each other's.
    memo: { taskQueue: config.taskQueues.main },
  });
}

/** Points an existing schedule at a rule's new version; its pause state and its record of runs stay. */
export async function updateSyncSchedule(client: Client, config: BerthConfig, rule: SyncRule, origin: RuleOrigin): Promise<void> {
  await client.schedule.getHandle(scheduleId(rule.name)).update((prev) => ({ ...prev, spec: spec(rule), action: action(config, rule, origin) }));
}

/**
 * On start: one schedule per rule in berth.yaml, created or brought up to date; schedules of config rules that
 * left the file are deleted. Rules created through the API are kept, their plans re-resolved against this config.
 */
export async function reconcileSyncSchedules(client: Client, config: BerthConfig): Promise<{ created: string[]; updated: string[]; deleted: string[]; failed: string[] }> {
  const result = { created: [] as string[], updated: [] as string[], deleted: [] as string[], failed: [] as string[] };
  for (const rule of config.syncRules) {
    if (!(await describeSyncSchedule(client, rule.name))) {
      await createSyncSchedule(client, config, rule, 'config');
      result.created.push(rule.name);
    } else {
      await updateSyncSchedule(client, config, rule, 'config');
      result.updated.push(rule.name);
    }
  }
  for (const name of await syncScheduleNames(client, config)) {
    if (config.syncRules.some((r) => r.name === name)) continue;
    const stored = await describeSyncSchedule(client, name);
    if (!stored) continue;
    if (stored.origin === 'config') {
      await client.schedule.getHandle(scheduleId(name)).delete();
      result.deleted.push(name);
    } else {
      // A rule made through the API may name a registry this config no longer has: it is paused, not fatal.
      try {
        await updateSyncSchedule(client, config, stored.rule, 'api');
        result.updated.push(name);
      } catch (err) {
        await client.schedule.getHandle(scheduleId(name)).pause(`paused on start: ${(err as Error).message}`);
        result.failed.push(`${name}: ${(err as Error).message}`);
      }
    }
  }
  return result;
}
