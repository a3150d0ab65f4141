import { registryKind } from '../activities/registry/adapters/kinds.ts';
import type { DistributionNode } from '../contracts/distribution.ts';
import type { SyncPair, SyncPlan } from '../contracts/sync.ts';
import { distributionPlan } from './idc-tree.ts';
import { findRegistry, idcTaskQueue, resolveRegistryName, type BerthConfig, type SyncRule } from '../config/load.ts';

/**
 * What one run of a sync rule does, resolved from berth.yaml: the source -> target pairs in the order they must
 * run (a sub-IDC syncs from its IDC after that IDC has synced from its parent), filters, mode and limits.
 */
export function syncPlan(config: BerthConfig, rule: SyncRule): SyncPlan {
  const endpoint = (name: string) => {
    const r = resolveRegistryName(config, name);
    if (!r) throw new Error(`unknown IDC or registry "${name}"`);
    return { registry: r.name, idc: r.idc, taskQueue: idcTaskQueue(config, r.idc) };
  };
  const source = endpoint(rule.source);
  let pairs: SyncPair[];
  if (rule.targets) {
    const targets = rule.targets.map(endpoint);
    pairs = targets.map((to) => ({ from: source, to, level: 1 }));
    if (rule.bidirectional) pairs.push(...targets.map((to) => ({ from: to, to: source, level: 2 })));
  } else {
    pairs = treePairs(distributionPlan(config, source.registry), 1);
  }
  // The source's own replication, where the rule asks for it and the source's kind has one.
  const replicates = (registry: string) => registryKind(findRegistry(config, registry)!.kind).replicates;
  return {
    rule: rule.name,
    pairs: pairs.filter((p) => p.from.registry !== p.to.registry).map((p) => (rule.mode === 'harbor' && replicates(p.from.registry) ? { ...p, viaHarbor: true } : p)),
    repositories: rule.repositories,
    tags: rule.tags,
    harborDeadlineMs: rule.harborDeadlineSeconds * 1000,
    deleteExtra: rule.deleteExtra,
    requestsPerSecond: rule.requestsPerSecond,
    bytesPerSecond: rule.bytesPerSecond,
    maxAttempts: config.copy.maxAttempts,
    repositoriesPerBatch: config.sync.repositoriesPerBatch,
    eventsPerRun: config.sync.eventsPerRun,
  };
}

/** The tree's edges: each IDC's entry registry from its parent's, then its other registries from its entry. */
function treePairs(node: DistributionNode, level: number): SyncPair[] {
  const [entry, ...others] = node.registries;
  return [...others.map((o) => ({ from: entry, to: o, level })), ...node.children.flatMap((c) => [{ from: entry, to: c.registries[0], level }, ...treePairs(c, level + 1)])];
}
