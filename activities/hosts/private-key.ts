import ssh2 from 'ssh2';
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

/** A fresh ed25519 key pair in OpenSSH formats, one that ssh2 can read back. */
export function generateSshKeyPair(comment: string): { privateKey: string; publicKey: string } {
  let pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
  // ssh2's own parser refuses about 1 in 200 of the keys it generates ("Malformed OpenSSH private key"): berth could
  // not then connect with it. Such a key is never handed out.
  while (ssh2.utils.parseKey(pair.private) instanceof Error) pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
  return { privateKey: pair.private, publicKey: pair.public };
}
