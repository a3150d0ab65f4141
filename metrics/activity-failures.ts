import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';
import { recordActivityFailure } from './registry.ts';

/**
 * Counts every failed activity attempt by activity and failure type, for all activities at once: the type is the
 * ApplicationFailure's (RegistryAuthError, DigestMismatch, ...), else the error's class (CancelledFailure when a
 * worker shut down under it).
 */
export function countActivityFailures(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          recordActivityFailure(ctx.info.activityType, failureType(err));
          throw err;
        }
      },
    },
  };
}

function failureType(err: unknown): string {
  if (err instanceof ApplicationFailure && err.type) return err.type;
  return err instanceof Error ? err.name : 'Error';
}
