import type { Client } from '@temporalio/client';
import { fencedSyncPlan, type SyncFence } from '../config/ha-plan.ts';
import type { BerthConfig } from '../config/load.ts';
import { syncPlan } from '../config/sync-plan.ts';
import type { SyncPlan } from '../workflows/sync-registries.ts';
import { describeSyncSchedule, scheduleId, syncScheduleNames } from './sync-schedules.ts';

/**
 * Puts a fence of an HA group on every sync rule's schedule, or lifts it: the plan each schedule starts runs no
 * pair that writes to the fenced primary (config/ha-plan.ts). Each schedule keeps its fences in its action's
 * memo, so the fences of several groups add up. Returns the rules whose plan changed.
 */
export async function fenceSyncSchedules(client: Client, config: BerthConfig, fence: SyncFence, on: boolean): Promise<string[]> {
  const changed: string[] = [];
  for (const name of await syncScheduleNames(client)) {
    const stored = await describeSyncSchedule(client, name);
    if (!stored) continue;
    const before = (stored as { fences?: SyncFence[] }).fences ?? [];
    const fences = [...before.filter((f) => f.group !== fence.group), ...(on ? [fence] : [])];
    let plan: SyncPlan;
    try {
      plan = fencedSyncPlan(syncPlan(config, stored.rule), fences);
    } catch {
      continue; // a rule naming a registry this config lacks: the API pauses it at start
    }
    const current = stored.description.action.args?.[0] as SyncPlan | undefined;
    if (JSON.stringify(current?.pairs) === JSON.stringify(plan.pairs) && JSON.stringify(before) === JSON.stringify(fences)) continue;
    await client.schedule.getHandle(scheduleId(name)).update((prev) => ({ ...prev, action: { ...prev.action, args: [plan], memo: { ...prev.action.memo, fences } } }));
    changed.push(name);
  }
  return changed;
}
