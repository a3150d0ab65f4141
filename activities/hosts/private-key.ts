import type { Cluster } from '../../config/schema.ts';
import { readSecret } from '../../config/secrets.ts';
import { HostError } from './errors.ts';

/** Resolves a cluster's SSH private key from its reference (env var or file), inside the worker that connects. */
export function resolvePrivateKey(cluster: string, ref: Cluster['ssh']['privateKey']): string {
  try {
    return readSecret(ref, `the SSH private key of cluster ${cluster}`);
  } catch (err) {
    throw new HostError('SecretUnavailable', (err as Error).message);
  }
}
