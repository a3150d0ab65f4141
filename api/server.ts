import { isGrpcServiceError, ServiceError, type Client } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BerthConfig } from '../config/load.ts';
import { distributionRoutes } from './routes/distributions.ts';
import { haGroupRoutes } from './routes/ha-groups.ts';
import { syncRuleRoutes } from './routes/sync-rules.ts';
import { replicationRoutes } from './routes/replications.ts';
import { workflowRoutes } from './routes/workflows.ts';

const grpcDeadlineExceeded = 4;
const grpcUnavailable = 14;

export function buildApi(deps: { config: BerthConfig; client: Client; logger?: boolean }): FastifyInstance {
  // Workflow IDs are derived from requests (image, registries) and, URL-encoded, run past Fastify's default 100.
  const app = Fastify({ logger: deps.logger ?? false, routerOptions: { maxParamLength: 2048 } });
  app.setErrorHandler((err, _req, reply) => {
    // Temporal out of reach is not the caller's fault, nor a bug: say so, so that clients retry.
    const cause = err instanceof ServiceError ? err.cause : err;
    if (isGrpcServiceError(cause) && (cause.code === grpcUnavailable || cause.code === grpcDeadlineExceeded)) {
      return reply.code(503).send({ error: 'temporal unavailable', message: `Temporal at ${deps.config.temporal.address} did not answer: ${cause.details}` });
    }
    return reply.send(err);
  });
  app.get('/healthz', async () => ({ ok: true }));
  replicationRoutes(app, deps);
  distributionRoutes(app, deps);
  syncRuleRoutes(app, deps);
  haGroupRoutes(app, deps);
  workflowRoutes(app, deps);
  return app;
}
