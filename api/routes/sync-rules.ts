import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { SyncRule } from '../../config/load.ts';
import { syncRuleIssues, syncRuleSchema } from '../../config/schema.ts';
import { allows, type Principal } from '../auth/access.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { describeSyncSchedule, scheduleId, syncScheduleNames } from '../../schedules/sync-rules.ts';
import { createSyncSchedule, updateSyncSchedule } from '../sync-schedules.ts';

const noteBody = z.object({ note: z.string().max(500).optional() }).strict();

/**
 * Sync rules and their Temporal Schedules: list, create, change, delete, run now, pause and unpause, and the
 * drift reports of recent runs. A rule's project's admins manage it, its guests read it; rules without a project
 * are the platform admins'. Rules from berth.yaml change only through the file (they follow it on restart).
 */
export function syncRuleRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config, client } = deps;
  // The stored rule, looked up once per request: authorization needs its project, the handler the rest.
  const looked = new WeakMap<object, Awaited<ReturnType<typeof describeSyncSchedule>>>();
  const stored = async (req: object, name: string) => {
    if (!looked.has(req)) looked.set(req, await describeSyncSchedule(client, name));
    return looked.get(req);
  };
  const view = (found: NonNullable<Awaited<ReturnType<typeof describeSyncSchedule>>>) => {
    const { description, rule, origin } = found;
    return {
      ...rule,
      origin,
      paused: description.state.paused,
      note: description.state.note ?? null,
      nextRuns: description.info.nextActionTimes.slice(0, 3),
      recentRuns: description.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt, workflowId: a.action.workflow.workflowId, runId: a.action.workflow.firstExecutionRunId })),
      running: description.info.runningActions.map((a) => a.workflow.workflowId),
    };
  };
  const ruleIssues = (reply: FastifyReply, rule: SyncRule) => {
    const issues = syncRuleIssues(config.registries, rule);
    if (rule.project !== undefined && !config.projects.some((p) => p.name === rule.project)) issues.push({ path: ['project'], message: `unknown project "${rule.project}"` });
    return issues.length > 0 ? sendInvalid(reply, issues) : undefined;
  };
  /**
   * A project admin's rule may only touch the project's repositories: every include glob must lie within one of
   * them (the same glob, or under a `prefix/**` of theirs). Otherwise its copies and deletions would reach other
   * projects' images with berth's credentials.
   */
  const outsideProject = (reply: FastifyReply, rule: SyncRule, principal: Principal) => {
    if (principal.platformAdmin) return undefined;
    const own = config.projects.find((p) => p.name === rule.project)?.repositories ?? [];
    const within = (glob: string) => own.some((p) => p === glob || (p.endsWith('/**') && glob.startsWith(p.slice(0, -2))));
    const outside = rule.repositories.include.filter((g) => !within(g));
    if (outside.length === 0) return undefined;
    return reply.code(403).send({ error: 'forbidden', message: `repositories ${outside.join(', ')} reach beyond project ${rule.project}'s (${own.join(', ') || 'none'}): only platform admins may` });
  };
  const projectOfStored = async ({ req, params }: { req: object; params: Record<string, string> }) => (await stored(req, params.name))?.rule.project;
  const notFound = (reply: FastifyReply, name: string) => sendNotFound(reply, `no sync rule "${name}"`);
  const fromFile = (reply: FastifyReply, name: string) => reply.code(409).send({ error: 'conflict', message: `sync rule "${name}" is defined in berth.yaml: change it there` });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/sync-rules',
    summary: 'The sync rules the caller may read, with their schedules',
    tag: 'sync',
    access: { authenticated: true },
    handler: async ({ principal }) => {
      const all = await Promise.all((await syncScheduleNames(client, config)).map((name) => describeSyncSchedule(client, name)));
      return { rules: all.filter((r) => r !== undefined && allows(principal, { role: 'guest' }, r.rule.project)).map((r) => view(r!)) };
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/sync-rules/:name',
    summary: 'A sync rule and its schedule',
    tag: 'sync',
    access: { role: 'guest' },
    project: projectOfStored,
    handler: async ({ req, reply, params }) => {
      const found = await stored(req, params.name);
      return found ? view(found) : notFound(reply, params.name);
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/sync-rules',
    summary: 'Create a sync rule and its schedule (admins of its project)',
    tag: 'sync',
    body: syncRuleSchema,
    access: { role: 'admin' },
    project: ({ body }) => body.project,
    handler: async ({ reply, body, principal }) => {
      if (ruleIssues(reply, body) || outsideProject(reply, body, principal)) return reply;
      if (await describeSyncSchedule(client, body.name)) return reply.code(409).send({ error: 'conflict', message: `sync rule "${body.name}" exists` });
      await createSyncSchedule(client, config, body, 'api');
      reply.code(201);
      return view((await describeSyncSchedule(client, body.name))!);
    },
  });

  route(app, deps.gate, {
    method: 'PUT',
    url: '/v1/sync-rules/:name',
    summary: 'Change a sync rule made through the API (admins of its project)',
    tag: 'sync',
    body: syncRuleSchema.omit({ name: true }),
    access: { role: 'admin' },
    project: projectOfStored,
    handler: async ({ req, reply, params, body, principal }) => {
      const found = await stored(req, params.name);
      if (!found) return notFound(reply, params.name);
      if (found.origin === 'config') return fromFile(reply, params.name);
      const rule = { ...body, name: params.name };
      if (ruleIssues(reply, rule) || outsideProject(reply, rule, principal)) return reply;
      // Moving a rule to another project needs the admin role there too.
      if (!allows(principal, { role: 'admin' }, rule.project)) return reply.code(403).send({ error: 'forbidden', message: `${principal.name} is no admin of project ${rule.project ?? '(none)'}` });
      await updateSyncSchedule(client, config, rule, 'api');
      return view((await describeSyncSchedule(client, params.name))!);
    },
  });

  route(app, deps.gate, {
    method: 'DELETE',
    url: '/v1/sync-rules/:name',
    summary: 'Delete a sync rule made through the API, and its schedule',
    tag: 'sync',
    access: { role: 'admin' },
    project: projectOfStored,
    handler: async ({ req, reply, params }) => {
      const found = await stored(req, params.name);
      if (!found) return notFound(reply, params.name);
      if (found.origin === 'config') return fromFile(reply, params.name);
      await client.schedule.getHandle(scheduleId(params.name)).delete();
      reply.code(204);
      return undefined;
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/sync-rules/:name/run',
    summary: 'Run a sync rule now (a run already under way is not doubled: overlap policy SKIP)',
    tag: 'sync',
    access: { role: 'admin' },
    project: projectOfStored,
    handler: async ({ req, reply, params }) => {
      if (!(await stored(req, params.name))) return notFound(reply, params.name);
      await client.schedule.getHandle(scheduleId(params.name)).trigger();
      reply.code(202);
      return { rule: params.name, statusUrl: `/v1/sync-rules/${params.name}` };
    },
  });

  for (const op of ['pause', 'unpause'] as const) {
    route(app, deps.gate, {
      method: 'POST',
      url: `/v1/sync-rules/:name/${op}`,
      summary: `${op === 'pause' ? 'Pause' : 'Unpause'} a sync rule's schedule, with an optional note`,
      tag: 'sync',
      body: noteBody,
      access: { role: 'admin' },
      project: projectOfStored,
      handler: async ({ req, reply, params, body }) => {
        if (!(await stored(req, params.name))) return notFound(reply, params.name);
        await client.schedule.getHandle(scheduleId(params.name))[op](body.note ?? `${op}d through the API`);
        return view((await describeSyncSchedule(client, params.name))!);
      },
    });
  }

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/sync-rules/:name/reports',
    summary: "The drift reports of the rule's most recent runs, newest first, with each run's status",
    tag: 'sync',
    access: { role: 'guest' },
    project: projectOfStored,
    handler: async ({ req, reply, params }) => {
      const found = await stored(req, params.name);
      if (!found) return notFound(reply, params.name);
      const runs = [...found.description.info.recentActions].reverse();
      const reports = await Promise.all(
        runs.map(async (a) => {
          const handle = client.workflow.getHandle(a.action.workflow.workflowId, a.action.workflow.firstExecutionRunId);
          // A run Temporal's retention has removed meanwhile is reported as unknown, not as the whole list's failure.
          const status = await handle.describe().then(
            (d) => d.status,
            () => ({ name: 'UNKNOWN' as const }),
          );
          if (status.name === 'UNKNOWN') return { workflowId: a.action.workflow.workflowId, scheduledAt: a.scheduledAt, status: status.name };
          const base = { workflowId: a.action.workflow.workflowId, scheduledAt: a.scheduledAt, status: status.name };
          if (status.name === 'RUNNING') return base;
          return handle.result().then(
            (report) => ({ ...base, report }),
            (err) => ({ ...base, error: err.cause?.message ?? err.message, report: err.cause?.details?.[0] ?? null }),
          );
        }),
      );
      return { rule: params.name, reports };
    },
  });
}
