import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import { formatPath } from '../config/load.ts';

/** Bad input: 400 with every zod issue and the path of the field it concerns. */
export function sendInvalid(reply: FastifyReply, issues: readonly z.core.$ZodIssue[] | { path: PropertyKey[]; message: string }[]) {
  return reply.code(400).send({
    error: 'invalid request',
    issues: issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
  });
}

export function sendNotFound(reply: FastifyReply, message: string, path?: string) {
  return reply.code(404).send({ error: 'not found', message, ...(path ? { path } : {}) });
}

const grpcDeadlineExceeded = 4;
const grpcUnavailable = 14;

/** Temporal out of reach: not the caller's fault, nor a bug; clients should retry (503). */
export function isTemporalUnavailable(err: unknown): boolean {
  const cause = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(cause) && [grpcUnavailable, grpcDeadlineExceeded].includes(cause.code);
}

export function unavailableDetail(err: unknown): string {
  const cause = err instanceof ServiceError ? err.cause : err;
  return (cause as { details?: string }).details ?? String(cause);
}
