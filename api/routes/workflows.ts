import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import type { BerthConfig } from '../../config/load.ts';
import { sendNotFound } from '../http-errors.ts';

export function workflowUiUrl(config: BerthConfig, workflowId: string, runId: string): string {
  const ns = encodeURIComponent(config.temporal.namespace);
  return `${config.temporal.uiUrl}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

/** Status of any berth workflow: its state, its `progress` query, and its result or failure once closed. */
export function workflowRoutes(app: FastifyInstance, { config, client }: { config: BerthConfig; client: Client }) {
  app.get<{ Params: { workflowId: string } }>('/v1/workflows/:workflowId', async (req, reply) => {
    let description;
    try {
      description = await client.workflow.getHandle(req.params.workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return sendNotFound(reply, `no workflow "${req.params.workflowId}"`);
      throw err;
    }
    // Pinned to the run described, so that a new run under the same ID cannot mix into this answer.
    const handle = client.workflow.getHandle(description.workflowId, description.runId);
    const status = description.status.name;
    const progress = await handle.query('progress').catch(() => null);
    const body: Record<string, unknown> = {
      workflowId: description.workflowId,
      runId: description.runId,
      type: description.type,
      status,
      startTime: description.startTime,
      closeTime: description.closeTime ?? null,
      progress,
      uiUrl: workflowUiUrl(config, description.workflowId, description.runId),
    };
    if (status === 'COMPLETED') body.result = await handle.result();
    if (status === 'FAILED' || status === 'TERMINATED' || status === 'TIMED_OUT' || status === 'CANCELLED') {
      body.failure = await handle.result().then(
        () => null,
        (err) => describeFailure(err),
      );
    }
    return body;
  });
}

function describeFailure(err: unknown) {
  const cause = err instanceof WorkflowFailedError ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type, message: cause.message, details: cause.details ?? [] };
  return { type: (cause as Error)?.name ?? 'Error', message: (cause as Error)?.message ?? String(cause) };
}
