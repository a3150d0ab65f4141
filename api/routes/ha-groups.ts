import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { approveFailbackUpdate, failoverUpdate, guardStateQuery } from '../../contracts/ha.ts';
import { allows } from '../auth/access.ts';
import { sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { guardId, guardStatus as statusOf } from '../registry-guards.ts';

const failoverRequest = z.object({ reason: z.string().min(1).max(500), dryRun: z.boolean().optional() }).strict();
const failbackRequest = z.object({ reason: z.string().min(1).max(500) }).strict();

/**
 * HA groups: their state as their guards see it, manual failover (or its dry run), and approved failback. A
 * group's project's admins fail it over and back, its guests read it; groups without a project are the platform
 * admins'.
 */
export function haGroupRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config, client } = deps;
  const guard = (name: string) => client.workflow.getHandle(guardId(name));
  const groupOf = (name: string) => config.haGroups.find((g) => g.name === name);

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/ha-groups',
    summary: 'The HA groups the caller may read: active side, last probes, failover and failback events',
    tag: 'ha',
    access: { authenticated: true },
    handler: async ({ principal }) => ({
      groups: await Promise.all(
        config.haGroups
          .filter((g) => allows(principal, { role: 'guest' }, g.project))
          .map(async (g) => {
            const base = { name: g.name, project: g.project ?? null, endpoint: g.endpoint.url, primary: g.primary, secondary: g.secondary, guardWorkflowId: guardId(g.name) };
            try {
              // A guard that stopped watches nothing (berth starts it again): its last state would mislead.
              const guardStatus = await client.withDeadline(Date.now() + 3000, () => statusOf(client, g.name));
              if (guardStatus !== 'RUNNING') return { ...base, active: null, watched: false, guardRunning: false, guardStatus };
              // A guard whose worker is down cannot answer: say so rather than wait for the RPC deadline.
              const { plan: _, events, lastRound, ...state } = await client.withDeadline(Date.now() + 3000, () => guard(g.name).query(guardStateQuery));
              const activeRegistry = state.active === 'primary' ? g.primary : g.secondary;
              return { ...base, ...state, watched: true, guardRunning: true, guardStatus, activeRegistry, lastProbes: lastRound ?? null, lastEvent: events.at(-1) ?? null, events };
            } catch (err) {
              return { ...base, active: null, watched: true, guardRunning: true, error: `its guard did not answer: ${(err as Error).message}` };
            }
          }),
      ),
    }),
  });

  // Updates run inside the guard, one at a time: a second failover while one runs is refused by the validator.
  const operation = <B extends z.ZodType>(op: 'failover' | 'failback', body: B, summary: string, run: (name: string, body: z.infer<B>) => Promise<unknown>) =>
    route(app, deps.gate, {
      method: 'POST',
      url: `/v1/ha-groups/:name/${op}`,
      summary,
      tag: 'ha',
      body,
      access: { role: 'admin' },
      project: ({ params }) => groupOf(params.name)?.project,
      handler: async ({ reply, params, body: parsed }) => {
        if (!groupOf(params.name)) return sendNotFound(reply, `no HA group "${params.name}"`);
        try {
          return await run(params.name, parsed);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return reply.code(409).send({ error: 'conflict', message: `HA group ${params.name} is not watched right now: berth starts its guard again (within 30 s while the API runs)` });
          if (err instanceof WorkflowUpdateFailedError) {
            const cause = err.cause as Error & { type?: string };
            // A refused update (validator) changed nothing; a failed one is reported with its reason.
            const refused = cause?.type !== 'FailoverFailed' && cause?.type !== 'FailbackFailed';
            return reply.code(refused ? 409 : 502).send({ error: refused ? 'conflict' : 'failed', message: cause?.message ?? err.message });
          }
          throw err;
        }
      },
    });
  operation('failover', failoverRequest, 'Fail an HA group over to its secondary now, or plan it (dryRun)', (name, body) => guard(name).executeUpdate(failoverUpdate, { args: [body] }));
  operation('failback', failbackRequest, 'Approve failback: resync the recovered primary, switch back, verify', (name, body) => guard(name).executeUpdate(approveFailbackUpdate, { args: [body] }));
}
