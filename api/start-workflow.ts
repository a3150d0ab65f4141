import { createHash } from 'node:crypto';
import type { Client, Workflow, WorkflowStartOptions } from '@temporalio/client';
import type { FastifyReply } from 'fastify';
import type { BerthConfig } from '../config/load.ts';
import { workflowUiUrl } from './routes/workflows.ts';

/** A part of a workflow ID that stays within Temporal's limits: long lists are replaced by their hash. */
export function idPart(list: string[], what: string): string {
  const joined = list.join(',');
  return joined.length <= 200 ? joined : `${list.length}-${what}-${createHash('sha256').update(joined).digest('hex').slice(0, 16)}`;
}

/**
 * Starts a workflow whose ID is derived from the request, so that the same request while one runs joins it
 * instead of doing the work twice, and answers 202 with where to follow it.
 */
export async function startAndReply<W extends Workflow>(
  reply: FastifyReply,
  { config, client }: { config: BerthConfig; client: Client },
  workflow: W,
  opts: { workflowId: string; args: Parameters<W>; summary: string; extra?: Record<string, unknown> },
) {
  const handle = await client.workflow.start(workflow, {
    taskQueue: config.taskQueues.main,
    workflowId: opts.workflowId,
    args: opts.args,
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: opts.summary,
  } as unknown as WorkflowStartOptions<W>); // args are checked against W by the signature above
  return reply.code(202).send({
    workflowId: opts.workflowId,
    runId: handle.firstExecutionRunId,
    statusUrl: `/v1/workflows/${encodeURIComponent(opts.workflowId)}`,
    uiUrl: workflowUiUrl(config, opts.workflowId, handle.firstExecutionRunId),
    ...opts.extra,
  });
}
