import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { BerthConfig } from '../../config/load.ts';
import { syncRuleIssues, syncRuleSchema } from '../../config/schema.ts';
import { sendInvalid, sendNotFound } from '../http-errors.ts';
import { createSyncSchedule, describeSyncSchedule, scheduleId, syncScheduleNames, updateSyncSchedule } from '../sync-schedules.ts';

type Params = { Params: { name: string } };
const noteBody = z.object({ note: z.string().max(500).optional() }).strict().optional();

/**
 * Sync rules and their Temporal Schedules: list, create, change, delete, run now, pause and unpause, and the
 * drift reports of recent runs. Rules from berth.yaml change only through the file (they follow it on restart).
 */
export function syncRuleRoutes(app: FastifyInstance, { config, client }: { config: BerthConfig; client: Client }) {
  const view = async (name: string) => {
    const stored = await describeSyncSchedule(client, name);
    if (!stored) return undefined;
    const { description, rule, origin } = stored;
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
  const parseRule = (reply: FastifyReply, body: unknown) => {
    const parsed = syncRuleSchema.safeParse(body);
    if (!parsed.success) return void sendInvalid(reply, parsed.error.issues);
    const issues = syncRuleIssues(config.registries, parsed.data);
    if (issues.length > 0) return void sendInvalid(reply, issues);
    return parsed.data;
  };
  const editable = async (reply: FastifyReply, name: string) => {
    const stored = await describeSyncSchedule(client, name);
    if (!stored) return void sendNotFound(reply, `no sync rule "${name}"`);
    if (stored.origin === 'config') return void reply.code(409).send({ error: 'conflict', message: `sync rule "${name}" is defined in berth.yaml: change it there` });
    return stored;
  };

  app.get('/v1/sync-rules', async () => {
    const rules = await Promise.all((await syncScheduleNames(client)).map(view));
    return { rules: rules.filter((r) => r !== undefined) };
  });

  app.get<Params>('/v1/sync-rules/:name', async (req, reply) => (await view(req.params.name)) ?? sendNotFound(reply, `no sync rule "${req.params.name}"`));

  app.post('/v1/sync-rules', async (req, reply) => {
    const rule = parseRule(reply, req.body);
    if (!rule) return reply;
    if (await describeSyncSchedule(client, rule.name)) return reply.code(409).send({ error: 'conflict', message: `sync rule "${rule.name}" exists` });
    await createSyncSchedule(client, config, rule, 'api');
    return reply.code(201).send(await view(rule.name));
  });

  app.put<Params>('/v1/sync-rules/:name', async (req, reply) => {
    const rule = parseRule(reply, { ...(req.body as object), name: req.params.name });
    if (!rule || !(await editable(reply, req.params.name))) return reply;
    await updateSyncSchedule(client, config, rule, 'api');
    return view(rule.name);
  });

  app.delete<Params>('/v1/sync-rules/:name', async (req, reply) => {
    if (!(await editable(reply, req.params.name))) return reply;
    await client.schedule.getHandle(scheduleId(req.params.name)).delete();
    return reply.code(204).send();
  });

  // Runs now, whatever the schedule says; a run already under way is not doubled (overlap policy SKIP).
  app.post<Params>('/v1/sync-rules/:name/run', async (req, reply) => {
    if (!(await describeSyncSchedule(client, req.params.name))) return sendNotFound(reply, `no sync rule "${req.params.name}"`);
    await client.schedule.getHandle(scheduleId(req.params.name)).trigger();
    return reply.code(202).send({ rule: req.params.name, statusUrl: `/v1/sync-rules/${req.params.name}` });
  });

  for (const op of ['pause', 'unpause'] as const) {
    app.post<Params>(`/v1/sync-rules/:name/${op}`, async (req, reply) => {
      const body = noteBody.safeParse(req.body ?? undefined);
      if (!body.success) return sendInvalid(reply, body.error.issues);
      if (!(await describeSyncSchedule(client, req.params.name))) return sendNotFound(reply, `no sync rule "${req.params.name}"`);
      await client.schedule.getHandle(scheduleId(req.params.name))[op](body.data?.note ?? `${op}d through the API`);
      return view(req.params.name);
    });
  }

  /** The drift reports of the most recent runs, newest first, with each run's status. */
  app.get<Params>('/v1/sync-rules/:name/reports', async (req, reply) => {
    const stored = await describeSyncSchedule(client, req.params.name);
    if (!stored) return sendNotFound(reply, `no sync rule "${req.params.name}"`);
    const runs = [...stored.description.info.recentActions].reverse();
    const reports = await Promise.all(
      runs.map(async (a) => {
        const handle = client.workflow.getHandle(a.action.workflow.workflowId, a.action.workflow.firstExecutionRunId);
        const { status } = await handle.describe();
        const base = { workflowId: a.action.workflow.workflowId, scheduledAt: a.scheduledAt, status: status.name };
        if (status.name === 'RUNNING') return base;
        return handle.result().then(
          (report) => ({ ...base, report }),
          (err) => ({ ...base, error: err.cause?.message ?? err.message, report: err.cause?.details?.[0] ?? null }),
        );
      }),
    );
    return { rule: req.params.name, reports };
  });
}
