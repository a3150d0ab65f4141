import { readFileSync } from 'node:fs';
import type { Cluster } from '../../config/schema.ts';
import { HostError } from './errors.ts';

/** Resolves a cluster's SSH private key from its reference (env var or file), inside the worker that connects. */
export function resolvePrivateKey(cluster: string, ref: Cluster['ssh']['privateKey']): string {
  if (ref.env !== undefined) {
    const key = process.env[ref.env];
    if (!key) throw new HostError('SecretUnavailable', `the SSH private key of cluster ${cluster} is read from env var ${ref.env}, which this worker does not have`);
    return key;
  }
  try {
    return readFileSync(ref.file!, 'utf8');
  } catch (err) {
    throw new HostError('SecretUnavailable', `cannot read the SSH private key file of cluster ${cluster}: ${(err as Error).message}`);
  }
}
