import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleSpec } from '@temporalio/client';
import { workflowProjects } from '../codec/workflow-projects.ts';
import type { BerthConfig, SyncRule } from '../config/load.ts';
import { syncPlan } from '../planning/sync-plan.ts';
import { syncRegistries } from '../workflows/sync-registries.ts';
import { searchAttributes } from './start-workflow.ts';

/** Where a rule came from: config rules follow berth.yaml on every start; API rules live in their schedule. */
export type RuleOrigin = 'config' | 'api';

export const scheduleId = (rule: string) => `sync-rule:${rule}`;
const prefix = 'sync-rule:';

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

export interface StoredRule {
  rule: SyncRule;
  origin: RuleOrigin;
}

export async function describeSyncSchedule(client: Client, name: string) {
  try {
    const description = await client.schedule.getHandle(scheduleId(name)).describe();
    return { description, ...(description.action.memo as unknown as StoredRule) };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Names of every sync rule this installation has a schedule for (Temporal's list can lag a write by a moment).
 * A schedule without an owner was made before berth 0.2 named one: it is taken as this installation's.
 */
export async function syncScheduleNames(client: Client, config: BerthConfig): Promise<string[]> {
  const names: string[] = [];
  for await (const s of client.schedule.list()) {
    const owner = s.memo?.taskQueue;
    if (s.scheduleId.startsWith(prefix) && (owner === undefined || owner === config.taskQueues.main)) names.push(s.scheduleId.slice(prefix.length));
  }
  return names.sort();
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
