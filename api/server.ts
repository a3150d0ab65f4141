import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BerthConfig } from '../config/load.ts';
import { replicationRoutes } from './routes/replications.ts';
import { workflowRoutes } from './routes/workflows.ts';

export function buildApi(deps: { config: BerthConfig; client: Client; logger?: boolean }): FastifyInstance {
  // Workflow IDs are derived from requests (image, registries) and, URL-encoded, run past Fastify's default 100.
  const app = Fastify({ logger: deps.logger ?? false, routerOptions: { maxParamLength: 2048 } });
  app.get('/healthz', async () => ({ ok: true }));
  replicationRoutes(app, deps);
  workflowRoutes(app, deps);
  return app;
}
