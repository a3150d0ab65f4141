import { createHash } from 'node:crypto';
import type { Client, Workflow, WorkflowStartOptions } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { BerthCluster, BerthIdc, BerthImage, BerthKind, BerthProject } from '../contracts/search-attributes.ts';
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
export async function startAndReply<W extends Workflow>(reply: FastifyReply, deps: { config: BerthConfig; client: Client }, workflow: W, opts: StartOptions<W>) {
  const started = await startBerthWorkflow(deps, workflow, opts);
  reply.code(202);
  return started;
}

interface StartOptions<W extends Workflow> {
  workflowId: string;
  args: Parameters<W>;
  summary: string;
  startedBy: string;
  labels: WorkflowLabels;
  /** More of the request to keep with the workflow, where a later request can read it back. */
  memo?: Record<string, unknown>;
}

/** Starts a workflow, or joins the one running under the same ID; returns where to follow it. */
export async function startBerthWorkflow<W extends Workflow>({ config, client }: { config: BerthConfig; client: Client }, workflow: W, opts: StartOptions<W>) {
  const handle = await client.workflow.start(workflow, {
    taskQueue: config.taskQueues.main,
    workflowId: opts.workflowId,
    args: opts.args,
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: opts.summary,
    typedSearchAttributes: searchAttributes(opts.labels),
    // Who started it: a developer may cancel what they started, an admin anything in the project.
    memo: { ...opts.memo, startedBy: opts.startedBy },
  } as unknown as WorkflowStartOptions<W>); // args are checked against W by the signature above
  return {
    workflowId: opts.workflowId,
    runId: handle.firstExecutionRunId,
    statusUrl: `/v1/workflows/${encodeURIComponent(opts.workflowId)}`,
    uiUrl: workflowUiUrl(config, opts.workflowId, handle.firstExecutionRunId),
  };
}

/**
 * Starts a workflow, or joins the run under the same ID when it works on the same `key` of its memo (the same
 * request again); a run at work on another value is not joined but returned as `conflict` (that value), so that
 * the caller refuses the request (409) rather than folding it into the running one. The run the start got is asked
 * for its value, so two different requests at once cannot both pass.
 */
export async function startUnlessOther<W extends Workflow>(deps: { config: BerthConfig; client: Client }, workflow: W, opts: StartOptions<W> & { memo: Record<string, unknown> }, key: string) {
  const look = async () => {
    const started = await startBerthWorkflow(deps, workflow, opts);
    return { started, running: await deps.client.workflow.getHandle(started.workflowId, started.runId).describe() };
  };
  let { started, running } = await look();
  // It ended between the start and the look: this request starts its own.
  if (running.memo?.[key] !== opts.memo[key] && running.status.name !== 'RUNNING') ({ started, running } = await look());
  const value = running.memo?.[key];
  return value === opts.memo[key] ? { started } : { started, conflict: value ?? null };
}

/** What a workflow is about, for the Temporal UI's and the API's filters. */
export interface WorkflowLabels {
  kind: string;
  project?: string;
  cluster?: string;
  idcs?: string[];
  image?: string;
}

export function searchAttributes(labels: WorkflowLabels): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [{ key: BerthKind, value: labels.kind }];
  if (labels.project) pairs.push({ key: BerthProject, value: labels.project });
  if (labels.cluster) pairs.push({ key: BerthCluster, value: labels.cluster });
  if (labels.idcs?.length) pairs.push({ key: BerthIdc, value: labels.idcs });
  if (labels.image) pairs.push({ key: BerthImage, value: labels.image });
  return pairs;
}
