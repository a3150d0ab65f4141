import { ProviderError } from '../provider.ts';

/** What the SDK throws: a service error carries EC2's code as its name and $fault; a network error a Node code. */
interface SdkFailure {
  name?: string;
  message?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

/**
 * Classifies an EC2 call that failed after the SDK's own retries. Throttling and server faults stay retryable
 * (Temporal retries the activity later, with a longer backoff than the SDK's); EC2 refusing the request as made
 * does not.
 */
export function ec2Failure(err: unknown, what: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (err ?? {}) as SdkFailure;
  const status = e.$metadata?.httpStatusCode;
  const message = `EC2 ${what}: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message ?? String(err)}`;
  if (e.name?.startsWith('InvalidInstanceID.NotFound')) return new ProviderError('MachineNotFound', message, { cause: err });
  if (e.$fault === 'client' && status !== undefined && status < 500 && e.name !== 'RequestLimitExceeded') {
    return new ProviderError('ProviderRejected', message, { cause: err });
  }
  // Server faults, throttling, refused or reset connections, timeouts.
  return new ProviderError('ProviderUnavailable', message, { cause: err });
}
