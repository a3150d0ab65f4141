import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { costs, findMachine, listMachines, machineStates } from '../../inventory/index.ts';
import { idcTaskQueue, type BerthConfig, type Cluster } from '../../config/load.ts';
import { decommissionMachine, machineWorkflowId, provisionMachine, scalePool } from '../../workflows/provision-machine.ts';
import { allows, projectOfCluster } from '../auth/access.ts';
import { sendNotFound } from '../http-errors.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';
import { startAndReply, startBerthWorkflow, startUnlessOther } from '../start-workflow.ts';

export const name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits and dashes (1-63 chars)');

/** How a workflow about a cluster's machines is labelled, for the Temporal UI's and the API's filters. */
export const machineLabels = (config: BerthConfig, c: Cluster) => ({ kind: 'provision', project: projectOfCluster(config, c.name), cluster: c.name, idcs: [c.idc] });

/** Machines: provision into a pool, list from the inventory, decommission, scale a pool; and what they cost. */
export function machineRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { config, inventory } = deps;
  const clusterOf = (n: string | undefined): Cluster | undefined => config.clusters.find((c) => c.name === n);
  const labels = (c: Cluster) => machineLabels(config, c);
  const unknownPool = (c: Cluster, pool: string) => (c.pools.some((p) => p.name === pool) ? undefined : `cluster ${c.name} has no pool "${pool}"`);

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/machines',
    summary: 'Provision machines into a pool: one provisionMachine saga each (budget, create, SSH + host key, init profile, register)',
    tag: 'machines',
    body: z
      .object({ cluster: name, pool: name, count: z.number().int().min(1).max(50).default(1), name: name.optional() })
      .strict()
      .refine((b) => !b.name || b.count === 1, { error: 'a name names one machine: leave count at 1', path: ['count'] }),
    access: { role: 'developer' },
    project: ({ body }) => projectOfCluster(config, body.cluster),
    handler: async ({ reply, body, principal }) => {
      const cluster = clusterOf(body.cluster);
      if (!cluster) return sendNotFound(reply, `no cluster "${body.cluster}"`, 'cluster');
      if (unknownPool(cluster, body.pool)) return sendNotFound(reply, unknownPool(cluster, body.pool)!, 'pool');
      // Names: the one asked for, or the pool's next free ones (<pool>-1, <pool>-2, ...).
      const taken = new Set((await listMachines(inventory, { cluster: cluster.name })).filter((m) => m.state !== 'destroyed').map((m) => m.name));
      const names: string[] = body.name ? [body.name] : [];
      for (let i = 1; names.length < body.count; i++) if (!taken.has(`${body.pool}-${i}`)) names.push(`${body.pool}-${i}`);
      const workflows = [];
      for (const n of names) {
        workflows.push({
          name: n,
          ...(await startBerthWorkflow(deps, provisionMachine, {
            workflowId: machineWorkflowId(cluster.name, body.pool, n),
            args: [{ cluster: cluster.name, pool: body.pool, name: n, idcTaskQueue: idcTaskQueue(config, cluster.idc) }],
            summary: `provision ${cluster.name}/${body.pool}/${n}`,
            startedBy: principal.name,
            labels: labels(cluster),
          })),
        });
      }
      reply.code(202);
      return { workflows };
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/machines',
    summary: "Machines in the inventory, by cluster, pool and state (guests of the cluster's project; all clusters: platform admins)",
    tag: 'machines',
    query: z.object({ cluster: name.optional(), pool: name.optional(), state: z.enum(machineStates).optional() }).strict(),
    access: { role: 'guest' },
    project: ({ query }) => (query.cluster ? projectOfCluster(config, query.cluster) : undefined),
    handler: async ({ query }) => ({
      machines: (await listMachines(inventory, query)).map((m) => ({
        id: m.id,
        cluster: m.cluster,
        pool: m.pool,
        name: m.name,
        provider: m.provider,
        address: m.address,
        sshPort: m.sshPort,
        state: m.state,
        hostKeyFingerprint: m.hostKeyFingerprint,
        createdAt: m.createdAt,
        readyAt: m.readyAt,
        destroyedAt: m.destroyedAt,
        failureReason: m.failureReason,
      })),
    }),
  });

  route(app, deps.gate, {
    method: 'DELETE',
    url: '/v1/machines/:id',
    summary: 'Decommission a machine: out of its pool, destroyed at its provider, recorded',
    tag: 'machines',
    access: { role: 'developer' },
    project: async ({ params }) => {
      const m = await findMachine(inventory, params.id);
      return m ? projectOfCluster(config, m.cluster) : undefined;
    },
    handler: async ({ reply, params, principal }) => {
      const m = await findMachine(inventory, params.id);
      if (!m || m.state === 'destroyed') return sendNotFound(reply, `no machine "${params.id}"`);
      return startAndReply(reply, deps, decommissionMachine, {
        workflowId: `decommission:${m.id}`,
        args: [{ machineId: m.id, cluster: m.cluster, idcTaskQueue: idcTaskQueue(config, clusterOf(m.cluster)!.idc) }],
        summary: `decommission ${m.cluster}/${m.pool}/${m.name}`,
        startedBy: principal.name,
        labels: labels(clusterOf(m.cluster)!),
      });
    },
  });

  route(app, deps.gate, {
    method: 'POST',
    url: '/v1/pools/:cluster/:pool/scale',
    summary: "Bring a pool to `desired` machines, at most the pool's maxConcurrentCreates at a time",
    tag: 'machines',
    body: z.object({ desired: z.number().int().min(0).max(200) }).strict(),
    access: { role: 'developer' },
    project: ({ params }) => projectOfCluster(config, params.cluster),
    handler: async ({ reply, params, body, principal }) => {
      const cluster = clusterOf(params.cluster);
      if (!cluster) return sendNotFound(reply, `no cluster "${params.cluster}"`, 'cluster');
      if (unknownPool(cluster, params.pool)) return sendNotFound(reply, unknownPool(cluster, params.pool)!, 'pool');
      const pool = cluster.pools.find((p) => p.name === params.pool)!;
      // The same request while one runs joins it; another target is refused, never silently folded into it.
      const { started, conflict } = await startUnlessOther(
        deps,
        scalePool,
        {
          workflowId: `scale:${cluster.name}/${pool.name}`,
          args: [{ cluster: cluster.name, pool: pool.name, desired: body.desired, maxConcurrent: pool.maxConcurrentCreates, idcTaskQueue: idcTaskQueue(config, cluster.idc) }],
          summary: `scale ${cluster.name}/${pool.name} to ${body.desired}`,
          startedBy: principal.name,
          labels: labels(cluster),
          memo: { desired: body.desired },
        },
        'desired',
      );
      if (conflict !== undefined) {
        return reply.code(409).send({
          error: 'conflict',
          message: `pool ${cluster.name}/${pool.name} is being scaled to ${typeof conflict === 'number' ? conflict : 'a size this berth did not record'} (${started.workflowId}): wait for it to finish or cancel it, then scale to ${body.desired}`,
          running: { ...started, desired: conflict },
        });
      }
      reply.code(202);
      return started;
    },
  });

  route(app, deps.gate, {
    method: 'GET',
    url: '/v1/costs',
    summary: "Machine costs over a window, by cluster or pool, from each machine's lifetime and the rate card",
    tag: 'machines',
    query: z
      .object({
        groupBy: z.enum(['cluster', 'pool']).default('cluster'),
        cluster: name.optional(),
        from: z.coerce.date().optional(),
        to: z.coerce.date().optional(),
      })
      .strict(),
    // Anyone with a token; the rows are those of the clusters whose projects the caller may read.
    access: { authenticated: true },
    handler: async ({ query, principal }) => {
      const to = query.to ?? new Date();
      const from = query.from ?? new Date(to.getTime() - 30 * 86_400_000);
      const rows = (await costs(inventory, { groupBy: query.groupBy, from, to })).filter((r) => !query.cluster || r.cluster === query.cluster);
      return { groupBy: query.groupBy, from, to, costs: rows.filter((r) => allows(principal, { role: 'guest' }, projectOfCluster(config, r.cluster))) };
    },
  });
}
