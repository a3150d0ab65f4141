import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { idcTaskQueue, resolveRegistryName, type BerthConfig, type RegistryConfig } from '../../config/load.ts';
import { parseImageReference } from '../../activities/registry/reference.ts';
import { replicateImage, type ReplicateImageInput } from '../../workflows/replicate-image.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { workflowUiUrl } from './workflows.ts';

const imageField = z.string().superRefine((value, ctx) => {
  try {
    parseImageReference(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const replicationRequest = z
  .object({
    image: imageField,
    /** An IDC or a registry name. */
    source: z.string().min(1),
    targets: z.array(z.string().min(1)).min(1, 'name at least one target').max(100),
  })
  .strict();

export function replicationRoutes(app: FastifyInstance, { config, client }: { config: BerthConfig; client: Client }) {
  app.post('/v1/replications', async (req, reply) => {
    const parsed = replicationRequest.safeParse(req.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error.issues);
    const { image, source, targets } = parsed.data;

    const src = resolveRegistryName(config, source);
    if (!src) return sendNotFound(reply, `unknown IDC or registry "${source}"`, 'source');
    const resolved: RegistryConfig[] = [];
    for (const [i, name] of targets.entries()) {
      const t = resolveRegistryName(config, name);
      if (!t) return sendNotFound(reply, `unknown IDC or registry "${name}"`, `targets[${i}]`);
      if (t.name === src.name) return sendInvalid(reply, [{ path: ['targets', i], message: `"${name}" is the source registry` }]);
      if (resolved.some((r) => r.name === t.name)) return sendInvalid(reply, [{ path: ['targets', i], message: `"${name}" names registry ${t.name} twice` }]);
      resolved.push(t);
    }

    const input: ReplicateImageInput = {
      image,
      source: { registry: src.name, idc: src.idc, taskQueue: idcTaskQueue(config, src.idc) },
      targets: resolved.map((t) => ({ registry: t.name, idc: t.idc, taskQueue: idcTaskQueue(config, t.idc) })),
    };
    // Derived from the request: the same request while one runs joins it instead of copying twice. A long list
    // of targets is replaced by its hash, which keeps the ID within Temporal's limits.
    const targetList = resolved.map((t) => t.name).sort().join(',');
    const targetKey = targetList.length <= 200 ? targetList : `${resolved.length}-targets-${createHash('sha256').update(targetList).digest('hex').slice(0, 16)}`;
    const workflowId = `replicate:${image}:${src.name}->${targetKey}`;
    const handle = await client.workflow.start(replicateImage, {
      taskQueue: config.taskQueues.main,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `replicate ${image} from ${src.idc} to ${resolved.map((t) => t.idc).join(', ')}`,
    });
    return reply.code(202).send({
      workflowId,
      runId: handle.firstExecutionRunId,
      statusUrl: `/v1/workflows/${encodeURIComponent(workflowId)}`,
      uiUrl: workflowUiUrl(config, workflowId, handle.firstExecutionRunId),
    });
  });
}
