import { ApplicationFailure } from '@temporalio/activity';
import { findRegistry, type BerthConfig } from '../../config/load.ts';
import { RegistryClient } from './client.ts';
import { resolveCredentials } from './credentials.ts';
import { sharedBucket } from './throttle.ts';

export interface ClientLimits {
  /** Requests per second to this registry (shared by every client of this worker with the same limit). */
  requestsPerSecond?: number;
  /** Blob bytes per second read over `link` (a source -> target pair). */
  bytesPerSecond?: number;
  link?: string;
}

/**
 * The worker's registry clients by name (and limits): URLs and credentials come from the worker's own config, so
 * activities receive registry names only and no secret travels through Temporal.
 */
export type RegistryClients = (name: string, limits?: ClientLimits) => RegistryClient;

export function registryClients(config: BerthConfig): RegistryClients {
  const clients = new Map<string, RegistryClient>();
  return (name, limits = {}) => {
    const key = [name, limits.requestsPerSecond, limits.bytesPerSecond, limits.link].join('|');
    let client = clients.get(key);
    if (!client) {
      const registry = findRegistry(config, name);
      if (!registry) throw ApplicationFailure.nonRetryable(`registry "${name}" is not in this worker's config`, 'UnknownRegistry');
      client = new RegistryClient({
        name,
        baseUrl: registry.url,
        credentials: resolveCredentials(name, registry.credentials),
        trustedTokenRealms: registry.trustedTokenRealms,
        chunkSize: config.copy.chunkSizeMiB * 1024 * 1024,
        requests: limits.requestsPerSecond ? sharedBucket(`requests:${name}`, limits.requestsPerSecond) : undefined,
        downloads: limits.bytesPerSecond ? sharedBucket(`bytes:${limits.link ?? name}`, limits.bytesPerSecond) : undefined,
      });
      clients.set(key, client);
    }
    return client;
  };
}
