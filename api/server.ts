import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BerthConfig } from '../config/load.ts';
import { replicationRoutes } from './routes/replications.ts';
import { workflowRoutes } from './routes/workflows.ts';

export function buildApi(deps: { config: BerthConfig; client: Client; logger?: boolean }): FastifyInstance {
  const app = Fastify({ logger: deps.logger ?? false });
  app.get('/healthz', async () => ({ ok: true }));
  replicationRoutes(app, deps);
  workflowRoutes(app, deps);
  return app;
}
