import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { distributionPlan, PlanError } from '../../config/idc-tree.ts';
import type { BerthConfig } from '../../config/load.ts';
import { distributeImage } from '../../workflows/distribute-image.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { startAndReply } from '../start-workflow.ts';
import { imageField } from './replications.ts';

export const distributionRequest = z
  .object({
    image: imageField,
    /** An IDC or a registry; the root of the IDC tree when not given. */
    from: z.string().min(1).optional(),
  })
  .strict();

export function distributionRoutes(app: FastifyInstance, deps: { config: BerthConfig; client: Client }) {
  app.post('/v1/distributions', async (req, reply) => {
    const parsed = distributionRequest.safeParse(req.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error.issues);
    const { image, from } = parsed.data;
    let plan;
    try {
      plan = distributionPlan(deps.config, from);
    } catch (err) {
      if (err instanceof PlanError && err.unknown) return sendNotFound(reply, err.message, err.field);
      if (err instanceof PlanError) return sendInvalid(reply, [{ path: [err.field], message: err.message }]);
      throw err;
    }
    if (plan.children.length === 0 && plan.registries.length === 1) {
      return sendInvalid(reply, [{ path: ['from'], message: `nothing to distribute to: ${plan.idc} has no child IDCs and no other registry` }]);
    }
    return startAndReply(reply, deps, distributeImage, {
      workflowId: `distribute:${image}:${plan.registries[0].registry}`,
      args: [{ image, plan, maxAttempts: deps.config.copy.maxAttempts }],
      summary: `distribute ${image} from ${plan.idc} over the IDC tree`,
    });
  });
}
