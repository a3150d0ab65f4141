import type { HaGroupPlan } from '../workflows/registry-guard.ts';
import { findRegistry, idcTaskQueue, type BerthConfig, type HaGroup } from './load.ts';
import { syncRuleSchema } from './schema.ts';
import { syncPlan } from './sync-plan.ts';

/** "500ms", "2s", "1m" in milliseconds (the schema has checked the form). */
export function durationMs(value: string): number {
  const [, n, unit] = value.match(/^(\d+)(ms|s|m)$/)!;
  return Number(n) * { ms: 1, s: 1000, m: 60_000 }[unit as 'ms' | 's' | 'm'];
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
    primary: side(group.primary),
    secondary: side(group.secondary),
    probe: { everyMs: durationMs(group.probe.every), timeoutMs: durationMs(group.probe.timeout), failures: group.probe.failures },
    vantagePoints: vantage.map((idc) => ({ idc, taskQueue: idcTaskQueue(config, idc) })),
    automaticFailover: group.automaticFailover,
    // Failback first brings the old primary up to date from the side that served meanwhile: every repository.
    resync: syncPlan(config, syncRuleSchema.parse({ name: 'ha-failback', source: group.secondary, targets: [group.primary], schedule: { every: '1h' } })),
  };
}
