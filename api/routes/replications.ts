import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseImageReference } from '../../activities/registry/reference.ts';
import { idcTaskQueue, resolveRegistryName, type RegistryConfig } from '../../config/load.ts';
import type { ReplicateImageInput } from '../../contracts/replication.ts';
import { replicateImage } from '../../workflows/replicate-image.ts';
import { projectOfRepository } from '../auth/access.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { idPart, startAndReply } from '../start-workflow.ts';

export const imageField = z.string().superRefine((value, ctx) => {
  try {
    parseImageReference(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** The project an image reference belongs to (by its repository), for authorization. */
export const projectOfImage = (deps: ApiDeps, image: string) => projectOfRepository(deps.config, parseImageReference(image).repository);

const replicationRequest = z
  .object({
    image: imageField,
    /** An IDC or a registry name. */
    source: z.string().min(1),
    targets: z.array(z.string().min(1)).min(1, 'name at least one target').max(100),
  })
  .strict();

export function replicationRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config } = deps;
  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/replications',
    summary: 'Replicate an image from a source to targets (IDCs or registries); the same request joins a running one',
    tag: 'images',
    body: replicationRequest,
    access: { role: 'developer' },
    project: ({ body }) => projectOfImage(deps, body.image),
    handler: async ({ reply, body: { image, source, targets }, principal }) => {
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
        maxAttempts: config.copy.maxAttempts,
      };
      return startAndReply(reply, deps, replicateImage, {
        workflowId: `replicate:${image}:${src.name}->${idPart(resolved.map((t) => t.name).sort(), 'targets')}`,
        args: [input],
        summary: `replicate ${image} from ${src.idc} to ${resolved.map((t) => t.idc).join(', ')}`,
        startedBy: principal.name,
        labels: { kind: 'replication', project: projectOfImage(deps, image), image, idcs: [src.idc, ...resolved.map((t) => t.idc)] },
      });
    },
  });
}
