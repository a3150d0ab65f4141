import { z } from 'zod';
import { providerSchemas } from '../activities/cloud/schemas.ts';
import { stepSchemas } from '../activities/hosts/steps/schemas.ts';
import { envVarName, keyedUnion, resourceName, secretRef } from './fields.ts';
import { registryKind, registryKindNames, registryKinds } from '../activities/registry/adapters/kinds.ts';
import { compileFilter } from './filters.ts';

/**
 * Credentials are references only: the secret itself lives in an env var or a file and is resolved by the
 * activity that needs it, so it never reaches workflow arguments or history.
 */
const passwordRef = {
  passwordEnv: envVarName.optional(),
  passwordFile: z.string().min(1).optional(),
  password: z.never({ error: 'inline secrets are not accepted: use passwordEnv (an env var name) or passwordFile (a path)' }).optional(),
};

export const credentialsRefSchema = z
  .object({ username: z.string().min(1), ...passwordRef })
  .strict()
  .refine((c) => (c.passwordEnv === undefined) !== (c.passwordFile === undefined), {
    error: 'set exactly one of passwordEnv or passwordFile',
  });

export const idcSchema = z.object({ name: resourceName, parent: resourceName.optional() }).strict();

export const registrySchema = z
  .object({
    name: resourceName,
    idc: resourceName,
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .refine((u) => !new URL(u).username && !new URL(u).password, { error: 'credentials in the URL are not accepted: use credentials (passwordEnv or passwordFile)' })
      .transform((u) => u.replace(/\/+$/, '')),
    kind: z.enum(registryKindNames).default('distribution'),
    credentials: credentialsRefSchema.optional(),
    /**
     * Token services on other hosts that may receive this registry's credentials (Docker Hub's auth.docker.io):
     * berth sends them only to a token realm on the registry's own host, or to one of these (by origin).
     */
    trustedTokenRealms: z
      .array(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }))
      .max(20)
      .default([]),
  })
  .strict();

/** Glob patterns: `*` and `?` stay within a path segment, `**` crosses them. */
const globList = z.array(z.string().min(1).max(256)).max(100);

export const filterSchema = z
  .object({ include: globList.default(['**']), exclude: globList.default([]) })
  .strict()
  .prefault({});

export const syncRuleSchema = z
  .object({
    name: resourceName,
    /** A registry, or an IDC (its first registry). */
    source: z.string().min(1),
    /** Registries or IDCs to keep in sync with the source; when left out, the IDC tree below the source. */
    targets: z.array(z.string().min(1)).min(1).max(100).optional(),
    repositories: filterSchema,
    tags: filterSchema,
    schedule: z.union([
      z.object({ every: z.string().regex(/^\d+(s|m|h|d)$/, 'must be a number and a unit: 30s, 10m, 6h, 1d') }).strict(),
      z.object({ cron: z.string().regex(/^(\S+\s+){4}\S+$/, 'must be a cron expression of five fields') }).strict(),
    ]),
    /** direct: berth's copier; harbor: the source Harbor's own replication, verified by berth afterwards. */
    mode: z.enum(['direct', 'harbor']).default('direct'),
    /** mode harbor: seconds one Harbor execution may run; a stuck one is stopped and reported. */
    harborDeadlineSeconds: z.number().int().min(1).max(86_400).default(1800),
    /**
     * Also sync each target back to the source, after the source -> target pass (an HA pair's two registries).
     * Digests decide: a tag that differs is the source's after the first pass, so nothing ping-pongs.
     */
    bidirectional: z.boolean().default(false),
    /** Delete tags on targets that the source no longer has (matching the filters). Off unless asked for. */
    deleteExtra: z.boolean().default(false),
    /** Requests per second to each registry, per worker. */
    requestsPerSecond: z.number().positive().max(10_000).optional(),
    /** Blob bytes per second over each source -> target link, per worker. */
    bytesPerSecond: z.number().int().min(1024).optional(),
    /** Whether the schedule starts paused; pause/unpause through the API afterwards. */
    paused: z.boolean().default(false),
    /** Whose rule it is: that project's admins manage it (platform admins always can). */
    project: resourceName.optional(),
  })
  .strict();

/** What a rule names that the registries do not have; shared by berth.yaml and the sync-rules API. */
export function syncRuleIssues(registries: { name: string; idc: string; kind: string }[], rule: z.infer<typeof syncRuleSchema>): { path: (string | number)[]; message: string }[] {
  const find = (name: string) => registries.find((r) => r.name === name) ?? registries.find((r) => r.idc === name);
  const known = (name: string) => find(name) !== undefined;
  const issues: { path: (string | number)[]; message: string }[] = known(rule.source) ? [] : [{ path: ['source'], message: `unknown IDC or registry "${rule.source}"` }];
  if (rule.mode === 'harbor' && known(rule.source) && !registryKind(find(rule.source)!.kind).replicates) {
    const replicating = registryKinds.filter((k) => k.replicates).map((k) => k.name);
    issues.push({ path: ['mode'], message: `mode harbor needs a source of kind ${replicating.join(' or ')}; ${find(rule.source)!.name} is ${find(rule.source)!.kind}` });
  }
  rule.targets?.forEach((t, j) => {
    if (!known(t)) issues.push({ path: ['targets', j], message: `unknown IDC or registry "${t}"` });
  });
  if (rule.bidirectional && !rule.targets) issues.push({ path: ['bidirectional'], message: 'a bidirectional rule names its targets' });
  return issues;
}

const durationField = z.string().regex(/^\d+(ms|s|m)$/, 'must be a number and a unit: 500ms, 2s, 1m');

/** Two registries in two IDCs behind one stable endpoint, watched and failed over by berth. */
export const haGroupSchema = z
  .object({
    name: resourceName,
    primary: resourceName,
    secondary: resourceName,
    endpoint: z
      .object({
        /** What clients use: the stable registry address. */
        url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).transform((u) => u.replace(/\/+$/, '')),
        /**
         * The task queue of the berth worker beside nginx, which runs the endpoint's activities (switch, verify, push
         * log, where it points): `workers/main.ts --endpoint <group>`. The main queue when not given.
         */
        taskQueue: z
          .string()
          .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
          .optional(),
        /** An nginx reverse proxy whose upstream berth rewrites and reloads (on the machine of the endpoint's worker). */
        nginx: z
          .object({
            /** The file nginx includes at http level; berth writes `upstream berth_<group> { server host:port; }`. */
            upstreamFile: z.string().min(1),
            /** nginx's pid file: berth sends SIGHUP to reload. */
            pidFile: z.string().min(1),
            /** Manifest PUTs through the endpoint, one JSON line each (log_format in docs): the RPO's push log. */
            pushLog: z.string().min(1).optional(),
          })
          .strict(),
      })
      .strict(),
    probe: z
      .object({
        every: durationField.default('2s'),
        timeout: durationField.default('1500ms'),
        /** Consecutive rounds with a quorum of vantage points seeing the primary down before failing over. */
        failures: z.number().int().min(1).max(100).default(3),
        /** IDCs whose workers probe (each on its own task queue); all IDCs when not given. A majority decides. */
        vantagePoints: z.array(resourceName).min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** Fail over automatically on a quorum of failed probes; otherwise only through the API. */
    automaticFailover: z.boolean().default(true),
    /** Whose group it is: that project's admins may fail it over and back (platform admins always can). */
    project: resourceName.optional(),
  })
  .strict();

/** One step of an init profile, `{ <kind>: <its spec> }`: probe, apply only when needed, verify; reports changed or ok. */
export const initStepSchema = keyedUnion(stepSchemas, 'init step');

export const sshSchema = z
  .object({
    user: z.string().min(1).default('root'),
    privateKey: secretRef('the SSH private key'),
  })
  .strict();

export const providerSchema = z.discriminatedUnion('kind', providerSchemas);

export const clusterSchema = z
  .object({
    name: resourceName,
    /** The IDC the cluster's machines live in: their init runs on that IDC's task queue; their mirror is its registry. */
    idc: resourceName,
    provider: providerSchema,
    ssh: sshSchema,
    /**
     * host:port at which the cluster's machines reach their IDC's registry, when not at its URL's host (the docker
     * provider's machines see the host's loopback as 10.0.2.2). Their engines pull services' images there, and
     * trust it over plain HTTP when the registry's URL is http.
     */
    registryAddress: z
      .string()
      .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be host or host:port')
      .optional(),
    /** Refused before a create that would take the cluster's projected monthly cost above it. */
    monthlyBudget: z.number().positive().optional(),
    /** How often reconcileInventory holds the provider's machines against the inventory (a Temporal Schedule). */
    reconcileEvery: z
      .string()
      .regex(/^\d+(s|m|h|d)$/, 'must be a number and a unit: 30s, 10m, 6h, 1d')
      .default('15m'),
    pools: z
      .array(
        z
          .object({
            name: resourceName,
            instanceType: z.string().min(1),
            initProfile: resourceName,
            /** Machines created at once when the pool scales. */
            maxConcurrentCreates: z.number().int().min(1).max(50).default(2),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

/** An environment variable of a service: a value, or a secret by reference (read by the worker that starts it). */
const envEntry = z.union([z.string().transform((value) => ({ value })), z.object({ value: z.string() }).strict(), z.object({ env: envVarName }).strict(), z.object({ file: z.string().min(1) }).strict()], {
  error: 'a string, or one of { value }, { env } (an env var name) or { file } (a path): secrets by reference',
});

/** A service: containers of one image on the machines of a pool, replaced by `deployService` batch by batch. */
export const serviceSchema = z
  .object({
    name: resourceName,
    /** Whose service it is: its developers deploy it; its image must be in the project's repositories. */
    project: resourceName,
    /** The image's repository (the version is the tag): pushed to the master registry, pulled from the cluster IDC's. */
    image: z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'must be a repository name without tag or registry: team/app'),
    cluster: resourceName,
    pool: resourceName,
    /** Containers per machine of the pool. */
    replicas: z.number().int().min(1).max(50).default(1),
    /** Container ports, each published on a port the machine's engine picks (GET /v1/services/:name shows them). */
    ports: z.array(z.number().int().min(1).max(65535)).max(20).default([]),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), envEntry).default({}),
    health: z
      .object({
        /** GET this path on a published port: healthy on a 2xx answer. */
        http: z
          .object({ path: z.string().startsWith('/', 'must start with /'), port: z.number().int().min(1).max(65535) })
          .strict()
          .optional(),
        /** Or run this command in the container: healthy when it exits 0. */
        command: z.array(z.string().min(1)).min(1).optional(),
        interval: durationField.default('1s'),
        timeout: durationField.default('2s'),
        /** Failed checks in a row before the new container counts as unhealthy and the batch fails. */
        retries: z.number().int().min(1).max(100).default(10),
      })
      .strict()
      .refine((h) => (h.http === undefined) !== (h.command === undefined), { error: 'set exactly one of http or command' }),
    /** Replicas that may be out of service at once during a deploy. */
    maxUnavailable: z.number().int().min(0).max(1000).default(1),
    /** Replicas that may run on top of the wanted number during a deploy (a new one started before its old one stops). */
    maxSurge: z.number().int().min(0).max(1000).default(0),
    /** Deploy one machine first (the canary), then wait for an approval (POST /v1/services/:name/approve) before the rest. */
    approval: z.boolean().default(false),
  })
  .strict()
  .refine((s) => s.maxUnavailable + s.maxSurge > 0, { error: 'maxUnavailable and maxSurge cannot both be 0: nothing could be replaced', path: ['maxUnavailable'] })
  .refine((s) => s.health.http === undefined || s.ports.includes(s.health.http.port), { error: 'the health check port must be one of ports', path: ['health', 'http', 'port'] });

/** A PostgreSQL database; the password by reference, like a registry's (none: the server trusts the host). */
export const postgresSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(5432),
    database: z.string().min(1),
    user: z.string().min(1),
    ...passwordRef,
    /** TLS to the server, verified against the system's CAs (NODE_EXTRA_CA_CERTS adds a private one). */
    ssl: z.boolean().default(false),
    /** Connections per process. */
    maxConnections: z.number().int().min(1).max(1000).default(10),
  })
  .strict()
  .refine((p) => p.passwordEnv === undefined || p.passwordFile === undefined, { error: 'set at most one of passwordEnv or passwordFile' });

export type PostgresConfig = z.infer<typeof postgresSchema>;
export type InventoryConfig = { sqliteFile: string; postgres?: undefined } | { postgres: PostgresConfig; sqliteFile?: undefined };

export const configSchema = z
  .object({
    temporal: z
      .object({
        address: z.string().min(1).default('127.0.0.1:7233'),
        namespace: z.string().min(1).default('default'),
        uiUrl: z.url().default('http://127.0.0.1:8233'),
      })
      .strict()
      .prefault({}),
    taskQueues: z
      .object({
        /** Workflows and control activities. */
        main: z.string().min(1).default('berth-main'),
        /** Each IDC's activities run on `${idcPrefix}${idc}`, served by a worker inside that IDC. */
        idcPrefix: z.string().min(1).default('berth-idc-'),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Requests without a valid token per minute from one address (each is audited): more answer 429. */
        unauthenticatedRequestsPerMinute: z.number().int().min(1).max(100_000).default(60),
      })
      .strict()
      .prefault({}),
    copy: z
      .object({
        /** Blobs copied at once per target. */
        blobConcurrency: z.number().int().min(1).max(32).default(4),
        /** Blobs above this size are uploaded in chunks of this size (PATCH), smaller ones in one PUT. */
        chunkSizeMiB: z.number().int().min(1).max(1024).default(64),
        /** Attempts per copy (retryable faults only: an unreachable registry, 5xx, 429) before a target fails. */
        maxAttempts: z.number().int().min(1).max(100).default(10),
      })
      .strict()
      .prefault({}),
    sync: z
      .object({
        /** Catalog and tag list page size (`n`). */
        pageSize: z.number().int().min(1).max(10_000).default(1000),
        /**
         * Repositories per child workflow of a sync (and per page of the catalog). At most 500: the batch's names
         * travel in its input, which stays below 256 KiB with names of the longest kind (255 characters).
         */
        repositoriesPerBatch: z.number().int().min(1).max(500).default(50),
        /**
         * A sync run, and each of its batches, continues as new once its history holds this many events; two drift
         * pages (one fixed, the next compared meanwhile) add at most ~1,400 more, so a history stays below 10,000
         * (Temporal warns at 10,240 events and fails a workflow at 51,200).
         */
        eventsPerRun: z.number().int().min(100).max(8000).default(5000),
      })
      .strict()
      .prefault({}),
    idcs: z.array(idcSchema).min(1, 'at least one IDC is needed'),
    registries: z.array(registrySchema).min(1, 'at least one registry is needed'),
    syncRules: z.array(syncRuleSchema).default([]),
    haGroups: z.array(haGroupSchema).default([]),
    /**
     * Projects (business lines): the permission model's "offices". A project owns clusters and repositories
     * (globs); users get a role per project through the API.
     */
    projects: z.array(z.object({ name: resourceName, clusters: z.array(resourceName).default([]), repositories: z.array(z.string().min(1)).default([]) }).strict()).default([]),
    /** Hourly prices by provider kind and instance type; physical machines at an amortized rate. */
    rateCard: z.record(z.string(), z.record(z.string(), z.number().min(0))).default({}),
    initProfiles: z.record(resourceName, z.array(initStepSchema).min(1)).default({}),
    clusters: z.array(clusterSchema).default([]),
    services: z.array(serviceSchema).default([]),
    /** Payload encryption (AES-256-GCM): keys by reference, base64 of 32 bytes; old keys stay to read old histories. */
    encryption: z
      .object({
        currentKey: resourceName,
        keys: z.array(z.object({ id: resourceName, key: secretRef('an encryption key') }).strict()).min(1),
      })
      .strict()
      .refine((e) => e.keys.some((k) => k.id === e.currentKey), { error: 'currentKey must be one of keys' })
      .optional(),
    /** Each worker process, per task queue it polls (the SDK counts slots per queue). */
    workers: z
      .object({
        /** Activities run at once: bounds a worker's sockets and memory; more throughput comes from more workers. */
        maxConcurrentActivityTaskExecutions: z.number().int().min(1).max(10_000).default(100),
        /** Workflow executions kept in memory between their tasks; a workflow not cached replays its history first. */
        maxCachedWorkflows: z.number().int().min(0).max(100_000).default(1000),
        /**
         * On SIGTERM: how long activities in flight may run on before they are cancelled. A cancelled copy fails
         * its attempt at once, so another worker retries it from its last heartbeat's checkpoint.
         */
        shutdownGraceSeconds: z.number().int().min(0).max(3600).default(30),
      })
      .strict()
      .prefault({}),
    /** Prometheus metrics of each worker process: berth's and the Temporal SDK's, on one /metrics. */
    metrics: z
      .object({
        /** Off when not set; BERTH_METRICS_PORT sets it per process (several workers on one host). */
        port: z.number().int().min(1).max(65535).optional(),
        host: z.string().min(1).default('0.0.0.0'),
      })
      .strict()
      .prefault({}),
    /** The inventory database: a SQLite file (the default) or PostgreSQL; the same migrations run on both. */
    inventory: z
      .object({
        /** One host: the API and the main worker share the file. */
        sqliteFile: z.string().min(1).optional(),
        /** Any number of API and main worker processes, on any hosts. */
        postgres: postgresSchema.optional(),
      })
      .strict()
      .refine((i) => i.sqliteFile === undefined || i.postgres === undefined, { error: 'set sqliteFile or postgres, not both' })
      .transform((i): InventoryConfig => (i.postgres ? { postgres: i.postgres } : { sqliteFile: i.sqliteFile ?? '.berth/inventory.db' }))
      .prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const idcNames = new Set<string>();
    cfg.idcs.forEach((idc, i) => {
      if (idcNames.has(idc.name)) ctx.addIssue({ code: 'custom', path: ['idcs', i, 'name'], message: `duplicate IDC "${idc.name}"` });
      idcNames.add(idc.name);
    });
    cfg.idcs.forEach((idc, i) => {
      if (idc.parent === undefined) return;
      if (!idcNames.has(idc.parent)) {
        ctx.addIssue({ code: 'custom', path: ['idcs', i, 'parent'], message: `unknown IDC "${idc.parent}"` });
        return;
      }
      // Walk up the tree: a cycle would make the IDC tree infinite.
      const parents = new Map(cfg.idcs.map((d) => [d.name, d.parent]));
      const seen = new Set([idc.name]);
      for (let p: string | undefined = idc.parent; p !== undefined; p = parents.get(p)) {
        if (seen.has(p)) {
          ctx.addIssue({ code: 'custom', path: ['idcs', i, 'parent'], message: `IDC parents form a cycle through "${p}"` });
          return;
        }
        seen.add(p);
      }
    });
    const registryNames = new Set<string>();
    cfg.registries.forEach((r, i) => {
      if (registryNames.has(r.name) || idcNames.has(r.name)) {
        ctx.addIssue({ code: 'custom', path: ['registries', i, 'name'], message: `name "${r.name}" is already used by another IDC or registry` });
      }
      registryNames.add(r.name);
      if (!idcNames.has(r.idc)) ctx.addIssue({ code: 'custom', path: ['registries', i, 'idc'], message: `unknown IDC "${r.idc}"` });
    });
    const ruleNames = new Set<string>();
    cfg.syncRules.forEach((rule, i) => {
      if (ruleNames.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['syncRules', i, 'name'], message: `duplicate sync rule "${rule.name}"` });
      ruleNames.add(rule.name);
      for (const issue of syncRuleIssues(cfg.registries, rule)) ctx.addIssue({ code: 'custom', path: ['syncRules', i, ...issue.path], message: issue.message });
    });
    const groupNames = new Set<string>();
    const projectNames = new Set(cfg.projects.map((p) => p.name));
    const checkProject = (project: string | undefined, path: (string | number)[]) => {
      if (project !== undefined && !projectNames.has(project)) ctx.addIssue({ code: 'custom', path, message: `unknown project "${project}"` });
    };
    cfg.syncRules.forEach((r, i) => checkProject(r.project, ['syncRules', i, 'project']));
    cfg.haGroups.forEach((g, i) => checkProject(g.project, ['haGroups', i, 'project']));
    cfg.projects.forEach((p, i) =>
      p.clusters.forEach((c, j) => {
        if (!cfg.clusters.some((x) => x.name === c)) ctx.addIssue({ code: 'custom', path: ['projects', i, 'clusters', j], message: `unknown cluster "${c}"` });
      }),
    );
    cfg.clusters.forEach((c, i) => {
      if (!idcNames.has(c.idc)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'idc'], message: `unknown IDC "${c.idc}"` });
      c.pools.forEach((p, j) => {
        if (!(p.initProfile in cfg.initProfiles)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'pools', j, 'initProfile'], message: `unknown init profile "${p.initProfile}"` });
        if (cfg.rateCard[c.provider.kind]?.[p.instanceType] === undefined) {
          ctx.addIssue({ code: 'custom', path: ['clusters', i, 'pools', j, 'instanceType'], message: `no price for ${c.provider.kind} ${p.instanceType} in rateCard` });
        }
      });
    });
    const serviceNames = new Set<string>();
    cfg.services.forEach((s, i) => {
      const at = (...path: (string | number)[]) => ['services', i, ...path];
      if (serviceNames.has(s.name)) ctx.addIssue({ code: 'custom', path: at('name'), message: `duplicate service "${s.name}"` });
      serviceNames.add(s.name);
      const project = cfg.projects.find((p) => p.name === s.project);
      if (!project) return ctx.addIssue({ code: 'custom', path: at('project'), message: `unknown project "${s.project}"` });
      if (!compileFilter({ include: project.repositories, exclude: [] })(s.image)) {
        ctx.addIssue({ code: 'custom', path: at('image'), message: `${s.image} is not in project ${s.project}'s repositories (${project.repositories.join(', ') || 'none'})` });
      }
      const cluster = cfg.clusters.find((c) => c.name === s.cluster);
      if (!cluster) return ctx.addIssue({ code: 'custom', path: at('cluster'), message: `unknown cluster "${s.cluster}"` });
      if (!project.clusters.includes(s.cluster)) ctx.addIssue({ code: 'custom', path: at('cluster'), message: `cluster ${s.cluster} is not one of project ${s.project}'s clusters` });
      if (!cluster.pools.some((p) => p.name === s.pool)) ctx.addIssue({ code: 'custom', path: at('pool'), message: `cluster ${s.cluster} has no pool "${s.pool}"` });
      if (!cfg.registries.some((r) => r.idc === cluster.idc)) ctx.addIssue({ code: 'custom', path: at('cluster'), message: `cluster ${s.cluster}'s IDC ${cluster.idc} has no registry for its machines to pull from` });
    });
    cfg.haGroups.forEach((g, i) => {
      const at = (...path: (string | number)[]) => ['haGroups', i, ...path];
      if (groupNames.has(g.name)) ctx.addIssue({ code: 'custom', path: at('name'), message: `duplicate HA group "${g.name}"` });
      groupNames.add(g.name);
      const primary = cfg.registries.find((r) => r.name === g.primary);
      const secondary = cfg.registries.find((r) => r.name === g.secondary);
      if (!primary) ctx.addIssue({ code: 'custom', path: at('primary'), message: `unknown registry "${g.primary}"` });
      if (!secondary) ctx.addIssue({ code: 'custom', path: at('secondary'), message: `unknown registry "${g.secondary}"` });
      if (primary && secondary && primary.idc === secondary.idc) {
        ctx.addIssue({ code: 'custom', path: at('secondary'), message: `${g.secondary} is in the primary's IDC (${primary.idc}): an HA pair spans two IDCs` });
      }
      g.probe.vantagePoints?.forEach((v, j) => {
        if (!idcNames.has(v)) ctx.addIssue({ code: 'custom', path: at('probe', 'vantagePoints', j), message: `unknown IDC "${v}"` });
      });
    });
  });

export type BerthConfig = z.infer<typeof configSchema>;
export type RegistryConfig = BerthConfig['registries'][number];
export type SyncRule = z.infer<typeof syncRuleSchema>;
export type SyncFilter = z.infer<typeof filterSchema>;
export type HaGroup = z.infer<typeof haGroupSchema>;
export type Cluster = z.infer<typeof clusterSchema>;
export type Service = z.infer<typeof serviceSchema>;
export type InitStep = z.infer<typeof initStepSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
export type CredentialsRef = z.infer<typeof credentialsRefSchema>;
