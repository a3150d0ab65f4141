import { ApplicationFailure } from '@temporalio/activity';
import { ClassifiedError } from '../contracts/classified-error.ts';

/** Classified errors become Temporal failures of the same type; the permanent ones are not retried. */
export async function asTemporalFailure<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // A Temporal failure already says whether it may be retried: it passes as it is.
    if (err instanceof ApplicationFailure) throw err;
    if (err instanceof ClassifiedError) {
      throw ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: !err.retryable, nextRetryDelay: err.retryAfterMs, details: err.details });
    }
    throw err;
  }
}
