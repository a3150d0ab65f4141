import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { roles } from '../auth/access.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';

const userName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be lowercase letters, digits, dots, dashes or underscores (1-64)');

/** Users, their roles per project, API tokens (shown once, stored hashed, expiring, revocable), and the audit log. */
export function userRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { auth, config } = deps;

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/me',
    summary: 'Who the token belongs to, and its roles',
    tag: 'access',
    access: { authenticated: true },
    handler: async ({ principal }) => ({ name: principal.name, platformAdmin: principal.platformAdmin, roles: principal.roles }),
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/users',
    summary: 'Every user and their roles (platform admins)',
    tag: 'access',
    access: { platformAdmin: true },
    handler: async () => ({ users: await auth.listUsers() }),
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/users',
    summary: 'Create a user (platform admins)',
    tag: 'access',
    body: z.object({ name: userName, platformAdmin: z.boolean().default(false) }).strict(),
    access: { platformAdmin: true },
    handler: async ({ reply, body }) => {
      if (await auth.userByName(body.name)) return reply.code(409).send({ error: 'conflict', message: `user "${body.name}" exists` });
      await auth.createUser(body.name, body.platformAdmin);
      reply.code(201);
      return { name: body.name, platformAdmin: body.platformAdmin };
    },
  });

  route(app, deps.gate, {
    method: 'PUT',
    url: '/v1/projects/:project/members/:user',
    summary: "Set a user's role in a project (its admins); role null removes the membership",
    tag: 'access',
    body: z.object({ role: z.enum(roles).nullable() }).strict(),
    access: { role: 'admin' },
    project: ({ params }) => params.project,
    handler: async ({ reply, params, body }) => {
      if (!config.projects.some((p) => p.name === params.project)) return sendNotFound(reply, `no project "${params.project}"`, 'project');
      const user = await auth.userByName(params.user);
      if (!user) return sendNotFound(reply, `no user "${params.user}"`, 'user');
      await auth.setRole(user.id, params.project, body.role);
      return { user: user.name, project: params.project, role: body.role };
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/tokens',
    summary: 'Issue an API token (for oneself; platform admins for anyone). The token is shown once.',
    tag: 'access',
    body: z.object({ user: userName.optional(), label: z.string().min(1).max(128), expiresInDays: z.number().int().min(1).max(3650).default(90) }).strict(),
    access: { authenticated: true },
    handler: async ({ reply, body, principal }) => {
      const name = body.user ?? principal.name;
      if (name !== principal.name && !principal.platformAdmin) return reply.code(403).send({ error: 'forbidden', message: 'only platform admins issue tokens for others' });
      const user = await auth.userByName(name);
      if (!user) return sendInvalid(reply, [{ path: ['user'], message: `no user "${name}"` }]);
      const expiresAt = new Date(Date.now() + body.expiresInDays * 86_400_000);
      const { id, token } = await auth.issueToken(user.id, body.label, expiresAt);
      reply.code(201);
      return { id, user: name, label: body.label, expiresAt, token };
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/tokens',
    summary: "One's own tokens (platform admins: everyone's), never the tokens themselves",
    tag: 'access',
    access: { authenticated: true },
    handler: async ({ principal }) => ({ tokens: await auth.tokens(principal.platformAdmin ? undefined : principal.userId) }),
  });

  route(app, deps.gate, {
    method: 'DELETE',
    url: '/v1/tokens/:id',
    summary: 'Revoke a token (one of one’s own; platform admins any)',
    tag: 'access',
    access: { authenticated: true },
    handler: async ({ reply, params, principal }) => {
      const id = Number(params.id);
      const owner = Number.isInteger(id) ? await auth.tokenOwner(id) : undefined;
      if (owner === undefined) return sendNotFound(reply, `no token ${params.id}`);
      if (owner !== principal.userId && !principal.platformAdmin) return reply.code(403).send({ error: 'forbidden', message: 'only platform admins revoke the tokens of others' });
      await auth.revokeToken(id);
      return { id, revoked: true };
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/audit',
    summary: 'The audit log: every mutating call, refused or not (platform admins)',
    tag: 'access',
    query: z
      .object({
        principal: z.string().optional(),
        action: z.string().optional(),
        outcome: z.string().optional(),
        from: z.coerce.date().optional(),
        to: z.coerce.date().optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      })
      .strict(),
    access: { platformAdmin: true },
    handler: async ({ query }) => ({ entries: await auth.auditLog(query) }),
  });
}
