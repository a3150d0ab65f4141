import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { BerthConfig } from '../../config/load.ts';
import { approveFailbackUpdate, failoverUpdate, guardStateQuery } from '../../workflows/registry-guard.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { guardId } from '../registry-guards.ts';

const failoverRequest = z.object({ reason: z.string().min(1).max(500), dryRun: z.boolean().optional() }).strict();
const failbackRequest = z.object({ reason: z.string().min(1).max(500) }).strict();

type Params = { Params: { name: string } };

/** HA groups: their state as their guards see it, manual failover (or its dry run), and approved failback. */
export function haGroupRoutes(app: FastifyInstance, { config, client }: { config: BerthConfig; client: Client }) {
  const guard = (name: string) => client.workflow.getHandle(guardId(name));
  const known = (name: string) => config.haGroups.some((g) => g.name === name);

  app.get('/v1/ha-groups', async () => ({
    groups: await Promise.all(
      config.haGroups.map(async (g) => {
        const base = { name: g.name, endpoint: g.endpoint.url, primary: g.primary, secondary: g.secondary, guardWorkflowId: guardId(g.name) };
        try {
          const { plan: _, events, lastRound, ...state } = await guard(g.name).query(guardStateQuery);
          return { ...base, ...state, activeRegistry: state.active === 'primary' ? g.primary : g.secondary, lastProbes: lastRound ?? null, lastEvent: events.at(-1) ?? null, events };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return { ...base, active: null, watched: false };
          throw err;
        }
      }),
    ),
  }));

  // Updates run inside the guard, one at a time: a second failover while one runs is refused by the validator.
  const update = (route: string, schema: z.ZodType, run: (name: string, body: never) => Promise<unknown>) =>
    app.post<Params>(route, async (req, reply) => {
      if (!known(req.params.name)) return sendNotFound(reply, `no HA group "${req.params.name}"`);
      const parsed = schema.safeParse(req.body ?? {});
      if (!parsed.success) return sendInvalid(reply, parsed.error.issues);
      try {
        return await run(req.params.name, parsed.data as never);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return reply.code(409).send({ error: 'conflict', message: `HA group ${req.params.name} is not watched: start berth to start its guard` });
        if (err instanceof WorkflowUpdateFailedError) {
          const cause = err.cause as Error & { type?: string };
          // A refused update (validator) changed nothing; a failed one is reported with its reason.
          const refused = cause?.type !== 'FailoverFailed' && cause?.type !== 'FailbackFailed';
          return reply.code(refused ? 409 : 502).send({ error: refused ? 'conflict' : 'failed', message: cause?.message ?? err.message });
        }
        throw err;
      }
    });
  update('/v1/ha-groups/:name/failover', failoverRequest, (name, body: z.infer<typeof failoverRequest>) => guard(name).executeUpdate(failoverUpdate, { args: [body] }));
  update('/v1/ha-groups/:name/failback', failbackRequest, (name, body: z.infer<typeof failbackRequest>) => guard(name).executeUpdate(approveFailbackUpdate, { args: [body] }));
}
