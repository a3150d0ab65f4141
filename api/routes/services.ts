import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { getMachine, listReleases, listServiceMachines } from '../../inventory/index.ts';
import type { Service } from '../../config/schema.ts';
import { deployServiceInput } from '../../planning/service-plan.ts';
import { approveDeployUpdate, deployWorkflowId, pauseDeployUpdate, resumeDeployUpdate } from '../../contracts/services.ts';
import { deployService } from '../../workflows/deploy-service.ts';
import { allows } from '../auth/access.ts';
import { sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { startUnlessOther } from '../start-workflow.ts';

/** A tag, as the distribution spec allows it: the version of a service is the tag of its image. */
const version = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, 'must be an image tag: letters, digits, "_", "." and "-", at most 128');

/** Services (berth.yaml's `services`): what runs where, deploys batch by batch, rollback, and a deploy's controls. */
export function serviceRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config, client, inventory } = deps;
  const serviceOf = (name: string): Service | undefined => config.services.find((s) => s.name === name);
  const project = ({ params }: { params: Record<string, string> }) => serviceOf(params.name)?.project;
  const unknown = (reply: FastifyReply, name: string) => sendNotFound(reply, `no service "${name}"`);

  /** Starts a deploy of `v`; a deploy of the service running with another version answers 409 naming it. */
  const deploy = async (reply: FastifyReply, s: Service, v: string, requestedBy: string, reason: 'deploy' | 'rollback') => {
    const cluster = config.clusters.find((c) => c.name === s.cluster)!;
    const { started, conflict } = await startUnlessOther(
      deps,
      deployService,
      {
        workflowId: deployWorkflowId(s.name),
        args: [deployServiceInput(config, s, v, requestedBy, reason)],
        summary: `${reason} ${s.name} ${v} on ${s.cluster}/${s.pool}`,
        startedBy: requestedBy,
        labels: { kind: 'deploy', project: s.project, cluster: s.cluster, idcs: [cluster.idc], image: `${s.image}:${v}` },
        memo: { version: v },
      },
      'version',
    );
    if (conflict !== undefined) {
      return reply.code(409).send({
        error: 'conflict',
        message: `${s.name} is being deployed at ${typeof conflict === 'string' ? conflict : 'a version this berth did not record'} (${started.workflowId}): wait for it, or cancel it, then deploy ${v}`,
        running: { ...started, version: conflict },
      });
    }
    reply.code(202);
    return started;
  };

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/services',
    summary: 'Services the caller may read, with their last release',
    tag: 'services',
    access: { authenticated: true },
    handler: async ({ principal }) => ({
      services: await Promise.all(
        config.services
          .filter((s) => allows(principal, { role: 'guest' }, s.project))
          .map(async (s) => ({ name: s.name, project: s.project, image: s.image, cluster: s.cluster, pool: s.pool, replicas: s.replicas, lastRelease: (await listReleases(inventory, s.name, 1))[0] ?? null })),
      ),
    }),
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/services/:name',
    summary: 'A service: per machine its version, containers (state, published ports) and health; its recent releases',
    tag: 'services',
    access: { role: 'guest' },
    project,
    handler: async ({ reply, params }) => {
      const s = serviceOf(params.name);
      if (!s) return unknown(reply, params.name);
      const machines = await Promise.all(
        (await listServiceMachines(inventory, { service: s.name })).map(async (m) => {
          const machine = await getMachine(inventory, m.machineId).catch(() => undefined);
          return { machine: machine?.name ?? null, address: machine?.address ?? null, state: machine?.state ?? null, ...m };
        }),
      );
      return { name: s.name, project: s.project, image: s.image, cluster: s.cluster, pool: s.pool, replicas: s.replicas, machines, releases: await listReleases(inventory, s.name) };
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/services/:name/deploy',
    summary: "Deploy a version (the image's tag): batch by batch behind health checks; a failed batch rolls every machine back",
    tag: 'services',
    body: z.object({ version }).strict(),
    access: { role: 'developer' },
    project,
    handler: async ({ reply, params, body, principal }) => {
      const s = serviceOf(params.name);
      if (!s) return unknown(reply, params.name);
      return deploy(reply, s, body.version, principal.name, 'deploy');
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/services/:name/rollback',
    summary: 'Redeploy the release before the last successful one',
    tag: 'services',
    access: { role: 'developer' },
    project,
    handler: async ({ reply, params, principal }) => {
      const s = serviceOf(params.name);
      if (!s) return unknown(reply, params.name);
      const succeeded = (await listReleases(inventory, s.name, 100)).filter((r) => r.outcome === 'succeeded');
      const previous = succeeded.find((r) => r.version !== succeeded[0].version);
      if (!previous) return reply.code(409).send({ error: 'conflict', message: `${s.name} has no earlier successful release to go back to` });
      return deploy(reply, s, previous.version, principal.name, 'rollback');
    },
  });

  const control = (action: 'pause' | 'resume' | 'approve', update: typeof pauseDeployUpdate, summary: string) =>
    route(app, deps.gate, {
      method: 'POST',
      url: `/v1/services/:name/${action}`,
      summary,
      tag: 'services',
      access: { role: 'developer' },
      project,
      handler: async ({ reply, params }) => {
        const s = serviceOf(params.name);
        if (!s) return unknown(reply, params.name);
        const handle = client.workflow.getHandle(deployWorkflowId(s.name));
        const running = await handle.describe().then(
          (d) => d.status.name === 'RUNNING',
          (err) => {
            if (err instanceof WorkflowNotFoundError) return false;
            throw err;
          },
        );
        if (!running) return reply.code(409).send({ error: 'conflict', message: `no deploy of ${s.name} is running` });
        try {
          return { workflowId: handle.workflowId, status: await handle.executeUpdate(update) };
        } catch (err) {
          if (err instanceof WorkflowUpdateFailedError) return reply.code(409).send({ error: 'conflict', message: `${action}: ${err.cause?.message ?? err.message}` });
          throw err;
        }
      },
    });
  control('pause', pauseDeployUpdate, 'Pause a running deploy before its next batch');
  control('resume', resumeDeployUpdate, 'Resume a paused deploy');
  control('approve', approveDeployUpdate, 'Approve a deploy waiting after its canary batch: the rest of the machines follow');
}
