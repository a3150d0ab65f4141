import type { CredentialsRef } from '../../config/schema.ts';
import { readSecret } from '../../config/secrets.ts';
import type { Credentials } from './auth.ts';
import { RegistryError } from './errors.ts';

/** Resolves a credentials reference to the secret, inside the worker that needs it. */
export function resolveCredentials(registry: string, ref: CredentialsRef | undefined): Credentials | undefined {
  if (!ref) return undefined;
  try {
    return { username: ref.username, password: readSecret({ env: ref.passwordEnv, file: ref.passwordFile }, `the password of registry ${registry}`) };
  } catch (err) {
    throw new RegistryError('RegistryAuthError', (err as Error).message);
  }
}
