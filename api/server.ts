import rateLimit from '@fastify/rate-limit';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Inventory } from '../inventory/index.ts';
import type { BerthConfig } from '../config/load.ts';
import { storeGate } from './auth/gate.ts';
import type { AuthStore } from './auth/store.ts';
import { metricsRoute } from '../metrics/exposition.ts';
import { isTemporalUnavailable, unavailableDetail } from './http-errors.ts';
import { openApiRoutes } from './openapi.ts';
import type { Gatekeeper } from './route.ts';
import { codecRoutes } from './routes/codec.ts';
import { machineRoutes } from './routes/machines.ts';
import { reconciliationRoutes } from './routes/reconciliation.ts';
import { serviceRoutes } from './routes/services.ts';
import { userRoutes } from './routes/users.ts';
import { distributionRoutes } from './routes/distributions.ts';
import { haGroupRoutes } from './routes/ha-groups.ts';
import { syncRuleRoutes } from './routes/sync-rules.ts';
import { replicationRoutes } from './routes/replications.ts';
import { workflowRoutes } from './routes/workflows.ts';

export interface ApiDeps {
  config: BerthConfig;
  client: Client;
  auth: AuthStore;
  inventory: Inventory;
  gate: Gatekeeper;
}

/** Probes and scrapers: they write nothing to the audit log and call often, so they are not rate-limited. */
const unlimited = new Set(['/healthz', '/metrics']);

export async function buildApi({ logger, ...rest }: { config: BerthConfig; client: Client; auth: AuthStore; inventory: Inventory; logger?: boolean }): Promise<FastifyInstance> {
  const deps: ApiDeps = { ...rest, gate: storeGate(rest.auth) };
  // Workflow IDs are derived from requests (image, registries) and, URL-encoded, run past Fastify's default 100.
  const app = Fastify({ logger: logger ?? false, routerOptions: { maxParamLength: 2048 } });
  // Every refused request is audited: requests without a valid token are limited per address, so that nobody can
  // flood the audit log (or guess tokens at speed). Callers with a valid token are never limited.
  const perMinute = deps.config.api.unauthenticatedRequestsPerMinute;
  await app.register(rateLimit, {
    global: true,
    max: perMinute,
    timeWindow: 60_000,
    allowList: async (req) => unlimited.has(req.routeOptions.url ?? '') || !('refused' in (await deps.gate.authenticate(req))),
    errorResponseBuilder: (_req, ctx) => Object.assign(new Error(`more than ${perMinute} requests without a valid token from this address within a minute: retry in ${ctx.after}`), { statusCode: ctx.statusCode }),
  });
  app.setErrorHandler((err, _req, reply) => {
    // Temporal out of reach is not the caller's fault, nor a bug: say so, so that clients retry.
    if (isTemporalUnavailable(err)) {
      return reply.code(503).send({ error: 'temporal unavailable', message: `Temporal at ${deps.config.temporal.address} did not answer: ${unavailableDetail(err)}` });
    }
    return reply.send(err);
  });
  app.get('/healthz', async () => ({ ok: true }));
  replicationRoutes(app, deps);
  distributionRoutes(app, deps);
  syncRuleRoutes(app, deps);
  haGroupRoutes(app, deps);
  workflowRoutes(app, deps);
  machineRoutes(app, deps);
  reconciliationRoutes(app, deps);
  serviceRoutes(app, deps);
  userRoutes(app, deps);
  codecRoutes(app, deps);
  openApiRoutes(app);
  // Prometheus scrapes without a token: metrics carry counts, never payloads or secrets.
  metricsRoute(app);
  return app;
}
