import type { HaGroupPlan } from '../contracts/ha.ts';
import type { SyncPlan } from '../contracts/sync.ts';
import { findRegistry, idcTaskQueue, type BerthConfig, type HaGroup } from '../config/load.ts';
import { syncRuleSchema } from '../config/schema.ts';
import { syncPlan } from './sync-plan.ts';

/** "500ms", "2s", "1m" in milliseconds (the schema has checked the form). */
export function durationMs(value: string): number {
  const [, n, unit] = value.match(/^(\d+)(ms|s|m)$/)!;
  return Number(n) * { ms: 1, s: 1000, m: 60_000 }[unit as 'ms' | 's' | 'm'];
}

/** The task queue of the worker beside a group's endpoint: its own, or the main queue. */
export function endpointTaskQueue(config: BerthConfig, group: HaGroup): string {
  return group.endpoint.taskQueue ?? config.taskQueues.main;
}

/** What the guard of an HA group needs, resolved from berth.yaml: no URLs or secrets, names and queues only. */
export function haGroupPlan(config: BerthConfig, group: HaGroup): HaGroupPlan {
  const side = (name: string) => {
    const r = findRegistry(config, name)!;
    return { registry: r.name, idc: r.idc, taskQueue: idcTaskQueue(config, r.idc), kind: r.kind };
  };
  const vantage = group.probe.vantagePoints ?? config.idcs.map((i) => i.name);
  return {
    group: group.name,
    endpointUrl: group.endpoint.url,
    endpointTaskQueue: endpointTaskQueue(config, group),
    primary: side(group.primary),
    secondary: side(group.secondary),
    probe: { everyMs: durationMs(group.probe.every), timeoutMs: durationMs(group.probe.timeout), failures: group.probe.failures },
    vantagePoints: vantage.map((idc) => ({ idc, taskQueue: idcTaskQueue(config, idc) })),
    automaticFailover: group.automaticFailover,
    // Failback first brings the old primary up to date from the side that served meanwhile: every repository.
    resync: syncPlan(config, syncRuleSchema.parse({ name: 'ha-failback', source: group.secondary, targets: [group.primary], schedule: { every: '1h' } })),
  };
}

/** A primary fenced by a failover: out of the endpoint, `serving` in its place, until an approved failback. */
export interface SyncFence {
  group: string;
  registry: string;
  serving: string;
}

/**
 * A sync rule's plan while primaries are fenced: no pair writes to a fenced primary, and none copies a fenced
 * primary's old state over the side that serves in its place. The failback's own resync is what writes to it.
 */
export function fencedSyncPlan(plan: SyncPlan, fences: SyncFence[]): SyncPlan {
  const kept = plan.pairs.filter((p) => !fences.some((f) => p.to.registry === f.registry || (p.from.registry === f.registry && p.to.registry === f.serving)));
  return kept.length === plan.pairs.length ? plan : { ...plan, pairs: kept };
}
