import { ApplicationFailure, Context } from '@temporalio/activity';
import { RegistryError } from '../registry/errors.ts';

/** A fault another attempt may fix: an unreachable registry, a 5xx, a 429. */
export const isTransient = (err: unknown): err is RegistryError => err instanceof RegistryError && err.retryable;

/** Whether this attempt is the activity's last: `maxAttempts` is its retry policy's, as the workflow passes it. */
export const lastAttempt = (maxAttempts: number) => Context.current().info.attempt >= maxAttempts;

/**
 * A batch's transient faults, once its other items are done, fail the attempt: Temporal retries it, with its
 * backoff, and the retry redoes only those. On the last attempt nothing is thrown: the caller reports them.
 */
export function retryTransient(faults: RegistryError[], total: number, what: string, maxAttempts: number): void {
  if (faults.length === 0 || lastAttempt(maxAttempts)) return;
  throw ApplicationFailure.create({
    type: 'RegistryUnavailable',
    message: `${faults.length} of ${total} ${what} failed, to be tried again; the first: ${faults[0].message}`,
    nextRetryDelay: Math.max(0, ...faults.map((f) => f.opts.retryAfterMs ?? 0)) || undefined,
  });
}
