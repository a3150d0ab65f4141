import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { allows, type Access, type Principal } from './auth/access.ts';
import type { AuditEntry } from './auth/store.ts';
import { isTemporalUnavailable, sendInvalid } from './http-errors.ts';

/** How the API learns who is asking and writes down what they did. */
export interface Gatekeeper {
  /** The principal a request's token names, or why there is none (missing, unknown, expired, revoked). */
  authenticate(req: FastifyRequest): Promise<Principal | { refused: string }>;
  audit(entry: AuditEntry): Promise<void>;
}

export interface RouteContext<B, Q> {
  req: FastifyRequest;
  reply: FastifyReply;
  params: Record<string, string>;
  body: B;
  query: Q;
  principal: Principal;
}

export interface RouteSpec<B extends z.ZodType, Q extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  tag: string;
  body?: B;
  query?: Q;
  access: Access;
  /** The project the request concerns, from its validated input; none means platform admins only. */
  project?: (ctx: Omit<RouteContext<z.infer<B>, z.infer<Q>>, 'principal'>) => string | undefined | Promise<string | undefined>;
  handler: (ctx: RouteContext<z.infer<B>, z.infer<Q>>) => Promise<unknown>;
}

/** Every route declared through `route`, per app: the OpenAPI document is made from them. */
export const declaredRoutes = new WeakMap<FastifyInstance, RouteSpec<z.ZodType, z.ZodType>[]>();

const mutating = new Set(['POST', 'PUT', 'DELETE']);

/**
 * Declares an API route the one way berth has: authentication (401), input validation with zod (400 naming each
 * field), authorization by role in the request's project (403), all before the handler starts anything; and an
 * audit entry for every call that could change something, refused or not.
 */
export function route<B extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined>(app: FastifyInstance, gate: Gatekeeper, spec: RouteSpec<B, Q>): void {
  declaredRoutes.set(app, [...(declaredRoutes.get(app) ?? []), spec]);
  app.route({
    method: spec.method,
    url: spec.url,
    handler: async (req, reply) => {
      const params = req.params as Record<string, string>;
      let who = 'anonymous';
      const audit = (outcome: string, detail?: unknown, status = reply.statusCode) =>
        mutating.has(spec.method)
          ? gate.audit({ at: new Date(), principal: who, action: `${spec.method} ${spec.url}`, target: req.url, source: req.ip, status, outcome, detail: detail === undefined ? null : JSON.stringify(detail) })
          : Promise.resolve();

      const principal = await gate.authenticate(req);
      if ('refused' in principal) {
        reply.code(401).header('www-authenticate', 'Bearer realm="berth"');
        await audit('unauthenticated', principal.refused);
        return reply.send({ error: 'unauthenticated', message: principal.refused });
      }
      who = principal.name;
      const body = spec.body ? spec.body.safeParse(req.body ?? {}) : { success: true as const, data: undefined };
      const query = spec.query ? spec.query.safeParse(req.query ?? {}) : { success: true as const, data: undefined };
      if (!body.success || !query.success) {
        const issues = [...(body.success ? [] : body.error.issues), ...(query.success ? [] : query.error.issues)];
        sendInvalid(reply, issues);
        await audit(
          'invalid',
          issues.map((i) => i.path.join('.')),
        );
        return reply;
      }
      const ctx = { req, reply, params, body: body.data as z.infer<B>, query: query.data as z.infer<Q> };
      try {
        const project = spec.project ? await spec.project(ctx) : undefined;
        if (!allows(principal, spec.access, project)) {
          const need = 'role' in spec.access ? `role ${spec.access.role} or higher in project ${project ?? '(none: platform admins only)'}` : 'a platform admin';
          reply.code(403);
          await audit('forbidden', need);
          return reply.send({ error: 'forbidden', message: `${principal.name} may not ${spec.method} ${spec.url}: it needs ${need}` });
        }
        const result = await spec.handler({ ...ctx, principal });
        // Handlers return plain bodies (never the sent reply), so what was started can be written down.
        const started = (result as { workflowId?: unknown } | undefined)?.workflowId;
        await audit(reply.statusCode < 400 ? 'ok' : 'refused', started === undefined ? undefined : { workflowId: started });
        return result;
      } catch (err) {
        // The error handler answers it (503 when Temporal is out of reach, else 500): record that, not the 200 set so far.
        await audit('error', (err as Error).message, isTemporalUnavailable(err) ? 503 : 500);
        throw err;
      }
    },
  });
}
