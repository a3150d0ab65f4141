import { ApplicationFailure } from '@temporalio/activity';

/**
 * An error berth has classified (RegistryError, HostError, ProviderError, InventoryError): its type names what
 * went wrong, `retryable` whether another attempt can help (an InventoryError never is).
 */
interface ClassifiedError extends Error {
  type: string;
  retryable?: boolean;
  opts?: { retryAfterMs?: number; step?: string; stderr?: string };
}

const isClassified = (err: unknown): err is ClassifiedError => err instanceof Error && typeof (err as ClassifiedError).type === 'string';

/** Classified errors become Temporal failures of the same type; the permanent ones are not retried. */
export async function asTemporalFailure<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // A Temporal failure already says whether it may be retried: it passes as it is.
    if (err instanceof ApplicationFailure) throw err;
    if (isClassified(err)) {
      throw ApplicationFailure.create({
        message: err.message,
        type: err.type,
        nonRetryable: err.retryable !== true,
        nextRetryDelay: err.opts?.retryAfterMs,
        details: err.opts?.step ? [{ step: err.opts.step, stderr: err.opts.stderr }] : undefined,
      });
    }
    throw err;
  }
}
