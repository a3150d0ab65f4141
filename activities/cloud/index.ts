import type { BerthConfig, ProviderConfig } from '../../config/schema.ts';
import type { Inventory } from '../../inventory/index.ts';
import { awsProvider } from './aws/provider.ts';
import { dockerProvider } from './docker/index.ts';
import { ProviderError, type CloudProvider, type ProviderContext } from './provider.ts';
import { staticProvider } from './static/provider.ts';

type Kind = ProviderConfig['kind'];

/** What the registry hands every factory; a factory takes what it needs (static: the inventory, for its allocations). */
export type ProviderDeps = ProviderContext & { inventory: Inventory };

/** The registry of providers: a new kind is its folder and one line here. */
const factories: { [K in Kind]: (config: Extract<ProviderConfig, { kind: K }>, deps: ProviderDeps) => CloudProvider } = {
  docker: dockerProvider,
  static: staticProvider,
  aws: awsProvider,
};

/**
 * The worker's providers by cluster, built from its own config on first use and kept (one EC2 client, one Docker
 * connection per cluster), so activities receive cluster names only and no secret travels through Temporal.
 */
export function cloudProviders(config: BerthConfig, inventory: Inventory, installation: string): (cluster: string) => CloudProvider {
  const built = new Map<string, CloudProvider>();
  return (name) => {
    let provider = built.get(name);
    if (!provider) {
      const cluster = config.clusters.find((c) => c.name === name);
      if (!cluster) throw new ProviderError('ProviderRejected', `cluster "${name}" is not in this worker's config`);
      const factory = factories[cluster.provider.kind] as (config: ProviderConfig, deps: ProviderDeps) => CloudProvider;
      provider = factory(cluster.provider, { cluster: name, rateCard: config.rateCard, installation, inventory });
      built.set(name, provider);
    }
    return provider;
  };
}
