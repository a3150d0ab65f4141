import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { declaredRoutes } from './route.ts';

/**
 * The OpenAPI document, made from the routes as declared (their zod schemas, summaries and access rules), so
 * it cannot drift from what the API does; served at /openapi.json, with an interactive page at /docs.
 */
function openApiDocument(app: FastifyInstance) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of declaredRoutes.get(app) ?? []) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const pathParams = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const queryParams =
      r.query instanceof z.ZodObject
        ? Object.entries(r.query.shape as Record<string, z.ZodType>).map(([name, schema]) => ({
            name,
            in: 'query',
            required: !schema.safeParse(undefined).success,
            schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }),
          }))
        : [];
    const access = 'role' in r.access ? `role ${r.access.role} or higher in the request's project` : 'platformAdmin' in r.access ? 'platform admins' : 'any valid token';
    paths[path] = {
      ...paths[path],
      [r.method.toLowerCase()]: {
        summary: r.summary,
        description: `Access: ${access}.`,
        tags: [r.tag],
        security: [{ bearer: [] }],
        parameters: [...pathParams, ...queryParams],
        ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } } } } : {}),
        responses: {
          '2XX': { description: 'done, created or started (202 with workflowId, statusUrl, uiUrl)' },
          '400': { description: 'invalid input: `issues` names each field and the problem' },
          '401': { description: 'no token, or an unknown, expired or revoked one' },
          '403': { description: 'the token’s user lacks the role' },
          '404': { description: 'unknown resource' },
          '409': { description: 'conflicts with the current state' },
          '503': { description: 'Temporal unavailable' },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'berth API', version: '1', description: 'A control plane for container operations on Temporal. Authenticate with `Authorization: Bearer <token>`.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}

export function openApiRoutes(app: FastifyInstance): void {
  app.register(swagger, { mode: 'static', specification: { document: { openapi: '3.1.0', info: { title: 'berth API', version: '1' }, paths: {} } } });
  app.register(swaggerUi, { routePrefix: '/docs', transformSpecification: () => openApiDocument(app), transformSpecificationClone: false });
  app.get('/openapi.json', async () => openApiDocument(app));
}
