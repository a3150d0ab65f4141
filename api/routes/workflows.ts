import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowExecutionDescription } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { BerthConfig } from '../../config/load.ts';
import { BerthKind, BerthProject } from '../../contracts/search-attributes.ts';
import { allows } from '../auth/access.ts';
import { sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';

export function workflowUiUrl(config: BerthConfig, workflowId: string, runId: string): string {
  const ns = encodeURIComponent(config.temporal.namespace);
  return `${config.temporal.uiUrl}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

const statuses = ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut', 'ContinuedAsNew'] as const;
const listQuery = z
  .object({
    kind: z
      .string()
      .regex(/^[a-z-]+$/)
      .optional(),
    project: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .optional(),
    status: z.enum(statuses).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();

/** The project a workflow belongs to, as its search attribute says; undefined when it has none. */
const projectOf = (d: WorkflowExecutionDescription) => d.typedSearchAttributes.get(BerthProject);

/** Status of any berth workflow: its state, its `progress` query, its result or failure; listing; cancelling. */
export function workflowRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config, client } = deps;
  // Resolved once per request by `project`, then used by the handler.
  const described = new WeakMap<object, WorkflowExecutionDescription | null>();
  const describe = async (req: object, workflowId: string) => {
    if (!described.has(req)) {
      described.set(
        req,
        await client.workflow
          .getHandle(workflowId)
          .describe()
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return null;
            throw err;
          }),
      );
    }
    return described.get(req)!;
  };

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/workflows',
    summary: 'List berth workflows (Temporal visibility), filtered by kind, project and status',
    tag: 'workflows',
    query: listQuery,
    access: { role: 'guest' },
    project: ({ query }) => query.project,
    handler: async ({ query }) => {
      const clauses = [`${BerthKind.name} IS NOT NULL`, `TaskQueue = '${config.taskQueues.main}'`];
      if (query.kind) clauses.push(`${BerthKind.name} = '${query.kind}'`);
      if (query.project) clauses.push(`${BerthProject.name} = '${query.project}'`);
      if (query.status) clauses.push(`ExecutionStatus = '${query.status}'`);
      const workflows = [];
      for await (const w of client.workflow.list({ query: clauses.join(' AND ') })) {
        workflows.push({
          workflowId: w.workflowId,
          runId: w.runId,
          type: w.type,
          status: w.status.name,
          kind: w.typedSearchAttributes.get(BerthKind) ?? null,
          project: w.typedSearchAttributes.get(BerthProject) ?? null,
          startTime: w.startTime,
          closeTime: w.closeTime ?? null,
        });
        if (workflows.length >= query.limit) break;
      }
      return { workflows };
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/workflows/:workflowId',
    summary: 'A workflow: status, progress query, result or failure, Temporal UI link',
    tag: 'workflows',
    access: { role: 'guest' },
    project: async ({ req, params }) => {
      const d = await describe(req, params.workflowId);
      return d ? projectOf(d) : undefined;
    },
    handler: async ({ req, reply, params }) => {
      const description = await describe(req, params.workflowId);
      if (!description) return sendNotFound(reply, `no workflow "${params.workflowId}"`);
      // Pinned to the run described, so that a new run under the same ID cannot mix into this answer.
      const handle = client.workflow.getHandle(description.workflowId, description.runId);
      const status = description.status.name;
      const body: Record<string, unknown> = {
        workflowId: description.workflowId,
        runId: description.runId,
        type: description.type,
        status,
        project: projectOf(description) ?? null,
        startedBy: description.memo?.startedBy ?? null,
        startTime: description.startTime,
        closeTime: description.closeTime ?? null,
        // A workflow whose workers are down cannot answer a query: say nothing rather than wait for the RPC deadline.
        progress: await client.withDeadline(Date.now() + 3000, () => handle.query('progress')).catch(() => null),
        uiUrl: workflowUiUrl(config, description.workflowId, description.runId),
      };
      if (status === 'COMPLETED') body.result = await handle.result();
      if (status === 'FAILED' || status === 'TERMINATED' || status === 'TIMED_OUT' || status === 'CANCELLED') {
        body.failure = await handle.result().then(
          () => null,
          (err: unknown) => describeFailure(err),
        );
      }
      return body;
    },
  });

  route(app, deps.gate, {
    method: 'DELETE',
    url: '/v1/workflows/:workflowId',
    summary: 'Cancel a running workflow: developers their own, project admins any in their project, HA guards platform admins only',
    tag: 'workflows',
    access: { role: 'developer' },
    project: async ({ req, params }) => {
      const d = await describe(req, params.workflowId);
      return d ? projectOf(d) : undefined;
    },
    handler: async ({ req, reply, params, principal }) => {
      const description = await describe(req, params.workflowId);
      if (!description) return sendNotFound(reply, `no workflow "${params.workflowId}"`);
      const startedBy = description.memo?.startedBy as string | undefined;
      const project = projectOf(description);
      // A cancelled guard leaves its HA group unwatched (until berth starts it again): a platform decision.
      if (description.type === 'registryGuard' && !principal.platformAdmin) {
        reply.code(403);
        return { error: 'forbidden', message: `only platform admins cancel ${params.workflowId}: it guards an HA group` };
      }
      if (startedBy !== principal.name && !allows(principal, { role: 'admin' }, project)) {
        reply.code(403);
        return { error: 'forbidden', message: `${principal.name} may cancel only workflows it started; ${params.workflowId} was started by ${startedBy ?? 'berth'}` };
      }
      if (description.status.name !== 'RUNNING') {
        reply.code(409);
        return { error: 'conflict', message: `${params.workflowId} is ${description.status.name}, not running` };
      }
      await client.workflow.getHandle(description.workflowId, description.runId).cancel();
      reply.code(202);
      return { workflowId: description.workflowId, runId: description.runId, cancelRequested: true };
    },
  });
}

function describeFailure(err: unknown) {
  const cause = err instanceof WorkflowFailedError ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type, message: cause.message, details: cause.details ?? [] };
  return { type: (cause as Error)?.name ?? 'Error', message: (cause as Error)?.message ?? String(cause) };
}
