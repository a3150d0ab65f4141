import type { Client } from '@temporalio/client';
import type { BerthConfig } from '../config/load.ts';
import type { SyncPlan } from '../contracts/sync.ts';
import { fencedSyncPlan, type SyncFence } from '../planning/ha-plan.ts';
import { syncPlan } from '../planning/sync-plan.ts';
import { describeSyncSchedule, scheduleId, syncScheduleNames } from './sync-rules.ts';

/**
 * Puts a fence of an HA group on every sync rule's schedule, or lifts it: the plan each schedule starts runs no
 * pair that writes to the fenced primary (planning/ha-plan.ts). Each schedule keeps its fences in its action's
 * memo, so the fences of several groups add up. Returns the rules whose plan changed.
 */
export async function fenceSyncSchedules(client: Client, config: BerthConfig, fence: SyncFence, on: boolean): Promise<string[]> {
  const changed: string[] = [];
  for (const name of await syncScheduleNames(client, config)) {
    const stored = await describeSyncSchedule(client, name);
    if (!stored) continue;
    let full: SyncPlan;
    try {
      full = syncPlan(config, stored.rule);
    } catch {
      continue; // a rule naming a registry this config lacks: the API pauses it at start
    }
    // A rule this group's fence never touches is left alone. The others are always written: a schedule's
    // description may lag an update made a moment ago, and updates apply in the order they were made.
    if (fencedSyncPlan(full, [fence]) === full) continue;
    const fences = [...((stored as { fences?: SyncFence[] }).fences ?? []).filter((f) => f.group !== fence.group), ...(on ? [fence] : [])];
    const plan = fencedSyncPlan(full, fences);
    await client.schedule.getHandle(scheduleId(name)).update((prev) => ({ ...prev, action: { ...prev.action, args: [plan], memo: { ...prev.action.memo, fences } } }));
    changed.push(name);
  }
  return changed;
}
