import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** What failed and why, in one line: an activity's failure by its cause, an application failure with its type. */
export function describeFailure(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return `${cause.type ?? 'Error'}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}
