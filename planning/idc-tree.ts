import type { DistributionNode } from '../contracts/distribution.ts';
import type { RegistryEndpoint } from '../contracts/registry-endpoint.ts';
import { idcTaskQueue, resolveRegistryName, type BerthConfig } from '../config/load.ts';

/** A request the IDC tree cannot serve; `unknown` when it names something berth.yaml does not have. */
export class PlanError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly unknown = false,
  ) {
    super(message);
  }
}

function registryEndpoints(config: BerthConfig, idc: string): RegistryEndpoint[] {
  return config.registries.filter((r) => r.idc === idc).map((r) => ({ registry: r.name, idc, taskQueue: idcTaskQueue(config, idc) }));
}

/**
 * The subtree of the IDC tree below `from` (an IDC or a registry; the root IDC when not given), as the
 * distribution walks it: each IDC pulls from its parent, so every inter-IDC link carries the image once.
 */
export function distributionPlan(config: BerthConfig, from?: string): DistributionNode {
  let rootIdc: string;
  if (from === undefined) {
    const roots = config.idcs.filter((i) => i.parent === undefined).map((i) => i.name);
    if (roots.length !== 1) throw new PlanError('from', `the IDC tree has ${roots.length} roots (${roots.join(', ')}): name the one to distribute from`);
    rootIdc = roots[0];
  } else {
    const registry = resolveRegistryName(config, from);
    if (!registry) throw new PlanError('from', `unknown IDC or registry "${from}"`, true);
    rootIdc = registry.idc;
  }
  const root = registryEndpoints(config, rootIdc);
  if (root.length === 0) throw new PlanError('from', `IDC "${rootIdc}" has no registry to distribute from`);
  // A named registry is the source even when it is not its IDC's first.
  const first = from === undefined ? root[0] : root.find((r) => r.registry === resolveRegistryName(config, from)!.name)!;
  return { idc: rootIdc, registries: [first, ...root.filter((r) => r !== first)], children: childrenOf(config, rootIdc) };
}

/** IDCs without a registry are passed through: their children pull from the nearest ancestor that has one. */
function childrenOf(config: BerthConfig, idc: string): DistributionNode[] {
  return config.idcs
    .filter((i) => i.parent === idc)
    .flatMap((i) => {
      const registries = registryEndpoints(config, i.name);
      const children = childrenOf(config, i.name);
      return registries.length > 0 ? [{ idc: i.name, registries, children }] : children;
    });
}
