import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { BerthConfig, SyncRule } from '../config/load.ts';

// One Temporal Schedule per sync rule holds the rule as written: what the API and the HA activities read of it.

/** Where a rule came from: config rules follow berth.yaml on every start; API rules live in their schedule. */
export type RuleOrigin = 'config' | 'api';

export const scheduleId = (rule: string) => `sync-rule:${rule}`;
const prefix = 'sync-rule:';

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
