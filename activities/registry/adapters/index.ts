import { ApplicationFailure } from '@temporalio/activity';
import { findRegistry, type BerthConfig } from '../../../config/load.ts';
import { registryClients, type RegistryClients } from '../clients.ts';
import { resolveCredentials } from '../credentials.ts';
import type { AdapterFactory, RegistryAdapter } from './adapter.ts';
import { distributionAdapter } from './distribution/adapter.ts';
import { harborAdapter } from './harbor/adapter.ts';
import { registryKind, type RegistryKindName } from './kinds.ts';

/** The adapter of every kind in kinds.ts (a kind without one does not compile). */
const factories: Record<RegistryKindName, AdapterFactory> = { distribution: distributionAdapter, harbor: harborAdapter };

/** The worker's registry adapters by registry name. */
export type RegistryAdapters = (name: string) => RegistryAdapter;

/**
 * One adapter per registry of the worker's config, built on first use and kept: URLs and credentials come from
 * the worker's own config, so activities receive registry names only and no secret travels through Temporal.
 */
export function registryAdapters(config: BerthConfig, clients: RegistryClients = registryClients(config)): RegistryAdapters {
  const adapters = new Map<string, RegistryAdapter>();
  return (name) => {
    let adapter = adapters.get(name);
    if (!adapter) {
      const registry = findRegistry(config, name);
      if (!registry) throw ApplicationFailure.nonRetryable(`registry "${name}" is not in this worker's config`, 'UnknownRegistry');
      const login = { name, url: registry.url, kind: registryKind(registry.kind), credentials: resolveCredentials(name, registry.credentials) };
      adapter = factories[registry.kind](login, (limits) => clients(name, limits));
      adapters.set(name, adapter);
    }
    return adapter;
  };
}
