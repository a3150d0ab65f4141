import { readFileSync } from 'node:fs';
import type { CredentialsRef } from '../../config/schema.ts';
import type { Credentials } from './auth.ts';
import { RegistryError } from './errors.ts';

/** Resolves a credentials reference to the secret, inside the worker that needs it. */
export function resolveCredentials(registry: string, ref: CredentialsRef | undefined): Credentials | undefined {
  if (!ref) return undefined;
  let password: string | undefined;
  if (ref.passwordEnv !== undefined) {
    password = process.env[ref.passwordEnv];
    if (password === undefined) {
      throw new RegistryError('RegistryAuthError', `the password of registry ${registry} is read from env var ${ref.passwordEnv}, which this worker does not have`);
    }
  } else if (ref.passwordFile !== undefined) {
    try {
      password = readFileSync(ref.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new RegistryError('RegistryAuthError', `cannot read the password file of registry ${registry}: ${(err as Error).message}`);
    }
  }
  return { username: ref.username, password: password ?? '' };
}
