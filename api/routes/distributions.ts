import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { distributionPlan, PlanError } from '../../planning/idc-tree.ts';
import type { DistributionNode } from '../../contracts/distribution.ts';
import { distributeImage } from '../../workflows/distribute-image.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { startAndReply } from '../start-workflow.ts';
import { imageField, projectOfImage } from './replications.ts';

const distributionRequest = z
  .object({
    image: imageField,
    /** An IDC or a registry; the root of the IDC tree when not given. */
    from: z.string().min(1).optional(),
  })
  .strict();

const idcsOf = (node: DistributionNode): string[] => [node.idc, ...node.children.flatMap(idcsOf)];

export function distributionRoutes(app: FastifyInstance, deps: ApiDeps) {
  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/distributions',
    summary: 'Distribute an image over the IDC tree below `from`, each IDC pulling from its parent',
    tag: 'images',
    body: distributionRequest,
    access: { role: 'developer' },
    project: ({ body }) => projectOfImage(deps, body.image),
    handler: async ({ reply, body: { image, from }, principal }) => {
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
        startedBy: principal.name,
        labels: { kind: 'distribution', project: projectOfImage(deps, image), image, idcs: idcsOf(plan) },
      });
    },
  });
}
