import { Agent, request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { basicAuthorization, type Credentials } from '../../auth.ts';
import { RegistryClient } from '../../client.ts';
import { asRegistryError, responseFailure, RegistryError } from '../../errors.ts';
import { credentialFingerprint, matchesFingerprint } from './credential-fingerprint.ts';

type Response = Dispatcher.ResponseData;

export interface HarborClientOptions {
  /** Used in error messages: the registry's name in berth.yaml. */
  name: string;
  /** The Harbor's URL: it serves its REST API under /api/v2.0 and the OCI distribution API under /v2. */
  baseUrl: string;
  credentials?: Credentials;
}

/** A replication endpoint: a registry Harbor knows by name and pushes to. */
export interface HarborRegistryEndpoint {
  name: string;
  url: string;
  type: 'docker-registry' | 'harbor';
  credential?: { access_key: string; access_secret: string };
  insecure: boolean;
}

/** A push-based, manually triggered policy: what berth asks Harbor to replicate, and where to. */
export interface HarborReplicationPolicy {
  name: string;
  destRegistryId: number;
  /** Harbor's doublestar patterns: `name` on the repository, `tag` on its tags. */
  filters: { name?: string; tag?: string };
  override: boolean;
}

// Harbor's answers, with only the fields berth reads.
const healthSchema = z.object({
  status: z.string(),
  components: z.array(z.object({ name: z.string(), status: z.string(), error: z.string().optional() })).default([]),
});
const endpointSchema = z.object({
  id: z.number(),
  name: z.string(),
  description: z.string().default(''),
  url: z.string(),
  insecure: z.boolean().default(false),
  credential: z.object({ access_key: z.string().default('') }).nullish(),
});
const policySchema = z.object({
  id: z.number(),
  name: z.string(),
  dest_registry: z.object({ id: z.number() }).nullish(),
  trigger: z.object({ type: z.string() }).nullish(),
  filters: z.array(z.object({ type: z.string(), value: z.unknown() })).nullish(),
  override: z.boolean().default(false),
  enabled: z.boolean().default(false),
});
const executionSchema = z.object({
  id: z.number(),
  policy_id: z.number(),
  /** InProgress, Succeed, Failed or Stopped (Harbor's words). */
  status: z.string(),
  status_text: z.string().default(''),
  total: z.number().default(0),
  failed: z.number().default(0),
  succeed: z.number().default(0),
  in_progress: z.number().default(0),
  stopped: z.number().default(0),
  start_time: z.string().nullish(),
  end_time: z.string().nullish(),
});
const taskSchema = z.object({ id: z.number(), status: z.string(), src_resource: z.string().default(''), dst_resource: z.string().default('') });

export type HarborHealth = z.infer<typeof healthSchema>;

/**
 * The components a push or pull goes through: core (the API and its /v2 proxy), its database and cache, and the
 * registry. The jobservice, portal, registryctl and scanners can fail while images are still served.
 */
const imagePath = new Set(['core', 'database', 'redis', 'registry']);

/** The components on the image path that Harbor reports unhealthy, each with its error: none when it serves images. */
export function unhealthyForImages(health: HarborHealth): string[] {
  if (!health.components.length) return health.status === 'healthy' ? [] : [`Harbor (${health.status})`];
  return health.components.filter((c) => imagePath.has(c.name) && c.status !== 'healthy').map((c) => (c.error ? `${c.name} (${c.error})` : c.name));
}

/** Harbor's answer to a replication endpoint it cannot reach with its credential: it does not say which. */
export function isUnhealthyTarget(err: unknown): err is RegistryError {
  return err instanceof RegistryError && err.opts.status === 400 && /the registry is unhealthy/.test(err.message);
}
export type HarborExecution = z.infer<typeof executionSchema>;
export type HarborTask = z.infer<typeof taskSchema>;

/**
 * A client for the parts of Harbor's REST API v2.0 that berth drives: health, projects, replication endpoints,
 * policies and executions. Harbor accepts Basic credentials on every API request.
 */
export class HarborClient {
  readonly name: string;
  readonly baseUrl: string;
  private readonly credentials?: Credentials;
  private readonly dispatcher: Dispatcher;

  constructor(opts: HarborClientOptions) {
    this.name = opts.name;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.credentials = opts.credentials;
    this.dispatcher = new Agent({ connectTimeout: 10_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** The OCI distribution API of this Harbor, with the same login. Close it after use. */
  registryClient(): RegistryClient {
    return new RegistryClient({ name: this.name, baseUrl: this.baseUrl, credentials: this.credentials });
  }

  /** Harbor's own view of its components (core, registry, database, ...); needs no credentials. */
  async health(signal?: AbortSignal): Promise<HarborHealth> {
    const res = await this.call('GET', '/api/v2.0/health', 'health check', { ok: [200], signal });
    return this.parse(res, healthSchema, 'health check');
  }

  /** Harbor's read-only mode: while on, pushes and deletes are refused (the fence of a failover). */
  async setReadOnly(readOnly: boolean, signal?: AbortSignal): Promise<void> {
    const res = await this.call('PUT', '/api/v2.0/configurations', `set read-only ${readOnly}`, { body: { read_only: readOnly }, ok: [200], signal });
    await res.body.dump();
  }

  /** Creates a private project unless one of that name exists. Any Harbor user may, unless Harbor restricts it. */
  async ensureProject(name: string, signal?: AbortSignal): Promise<void> {
    const what = `ensure project ${name}`;
    const head = await this.call('HEAD', `/api/v2.0/projects?project_name=${encodeURIComponent(name)}`, what, { ok: [200, 400, 404], signal });
    await head.body.dump();
    // Harbor answers 400, with no body, for a name it would not accept.
    if (head.statusCode === 400) {
      throw new RegistryError('RegistryRejected', `${what} on ${this.name}: HTTP 400: "${name}" is not a Harbor project name (lower-case letters and digits, joined by . _ -)`, { status: 400 });
    }
    if (head.statusCode === 200) return;
    // 409: created meanwhile by someone else, which is as good.
    const created = await this.call('POST', '/api/v2.0/projects', what, { body: { project_name: name, metadata: { public: 'false' } }, ok: [201, 409], signal });
    await created.body.dump();
  }

  /**
   * The id of the endpoint of that name, created or brought up to date. Harbor checks the target's health on every
   * create and update (answering `isUnhealthyTarget` when it is down or refuses the credential), so an endpoint
   * that is as wanted is left alone: its description keeps a fingerprint of the credential it was given.
   */
  async ensureRegistryEndpoint(endpoint: HarborRegistryEndpoint, signal?: AbortSignal): Promise<number> {
    const what = `ensure registry endpoint ${endpoint.name}`;
    const found = (await this.list(`/api/v2.0/registries?q=${encodeURIComponent(`name=${endpoint.name}`)}`, endpointSchema, what, 100, signal)).find((r) => r.name === endpoint.name);
    const { credential } = endpoint;
    if (!found) {
      const body = { ...endpoint, description: await credentialFingerprint(credential), credential: credential && { type: 'basic', ...credential } };
      return this.createdId(await this.call('POST', '/api/v2.0/registries', what, { body, ok: [201], signal }), what);
    }
    const unchanged =
      found.url === endpoint.url && found.insecure === endpoint.insecure && (found.credential?.access_key ?? '') === (credential?.access_key ?? '') && (!credential || (await matchesFingerprint(found.description, credential)));
    if (!unchanged) {
      const update = { url: endpoint.url, insecure: endpoint.insecure, description: await credentialFingerprint(credential), ...(credential && { credential_type: 'basic', ...credential }) };
      await (await this.call('PUT', `/api/v2.0/registries/${found.id}`, what, { body: update, ok: [200], signal })).body.dump();
    }
    return found.id;
  }

  /** The id of the policy of that name, created or brought up to date. */
  async ensureReplicationPolicy(policy: HarborReplicationPolicy, signal?: AbortSignal): Promise<number> {
    const what = `ensure replication policy ${policy.name}`;
    const filters = Object.entries(policy.filters).flatMap(([type, value]) => (value === undefined ? [] : [{ type, value }]));
    // No src_registry: the policy pushes from this Harbor to dest_registry.
    const body = { name: policy.name, dest_registry: { id: policy.destRegistryId }, trigger: { type: 'manual' }, filters, override: policy.override, enabled: true };
    // `q=name=<name>` is Harbor's exact match (its `name` parameter matches substrings).
    const query = `q=${encodeURIComponent(`name=${policy.name}`)}`;
    const found = (await this.list(`/api/v2.0/replication/policies?${query}`, policySchema, what, 100, signal)).find((p) => p.name === policy.name);
    if (!found) {
      const res = await this.call('POST', '/api/v2.0/replication/policies', what, { body, ok: [201], signal });
      return this.createdId(res, what);
    }
    const current = { dest: found.dest_registry?.id, trigger: found.trigger?.type, filters: (found.filters ?? []).map(({ type, value }) => ({ type, value })), override: found.override, enabled: found.enabled };
    const wanted = { dest: policy.destRegistryId, trigger: 'manual', filters, override: policy.override, enabled: true };
    if (JSON.stringify(current) !== JSON.stringify(wanted)) {
      const res = await this.call('PUT', `/api/v2.0/replication/policies/${found.id}`, what, { body, ok: [200], signal });
      await res.body.dump();
    }
    return found.id;
  }

  /** Starts a run of the policy; returns the execution's id. */
  async startExecution(policyId: number, signal?: AbortSignal): Promise<number> {
    const what = `start replication of policy ${policyId}`;
    const res = await this.call('POST', '/api/v2.0/replication/executions', what, { body: { policy_id: policyId }, ok: [201], signal });
    return this.createdId(res, what);
  }

  async getExecution(id: number, signal?: AbortSignal): Promise<HarborExecution> {
    const what = `get replication execution ${id}`;
    return this.parse(await this.call('GET', `/api/v2.0/replication/executions/${id}`, what, { ok: [200], signal }), executionSchema, what);
  }

  /** Every task of an execution (one per repository it copies), page by page. */
  async listTasks(executionId: number, pageSize = 100, signal?: AbortSignal): Promise<HarborTask[]> {
    return this.list(`/api/v2.0/replication/executions/${executionId}/tasks`, taskSchema, `list tasks of replication execution ${executionId}`, pageSize, signal);
  }

  /** A task's log, as text: where Harbor says why it failed. (Asked for JSON, Harbor sends it as one JSON string.) */
  async taskLog(executionId: number, taskId: number, signal?: AbortSignal): Promise<string> {
    const what = `get log of task ${taskId} of replication execution ${executionId}`;
    return (await this.call('GET', `/api/v2.0/replication/executions/${executionId}/tasks/${taskId}/log`, what, { ok: [200], accept: 'text/plain', signal })).body.text();
  }

  /** Asks Harbor to stop an execution; its status becomes Stopped. Harbor answers once its jobservice has. */
  async stopExecution(id: number, signal?: AbortSignal): Promise<void> {
    const what = `stop replication execution ${id}`;
    await (await this.call('PUT', `/api/v2.0/replication/executions/${id}`, what, { ok: [200], signal })).body.dump();
  }

  /** Every item of a list, following `page` until Harbor's `X-Total-Count` is reached. */
  private async list<T>(path: string, schema: z.ZodType<T>, what: string, pageSize: number, signal?: AbortSignal): Promise<T[]> {
    const items: T[] = [];
    for (let page = 1; ; page++) {
      const url = new URL(path, this.baseUrl);
      url.searchParams.set('page', String(page));
      url.searchParams.set('page_size', String(pageSize));
      const res = await this.call('GET', `${url.pathname}${url.search}`, what, { ok: [200], signal });
      const total = Number(header(res, 'x-total-count'));
      const batch = await this.parse(res, z.array(schema), what);
      items.push(...batch);
      if (batch.length < pageSize || items.length >= total) return items;
    }
  }

  /** Sends one API request; answers other than `ok` become classified errors. */
  private async call(method: Dispatcher.HttpMethod, path: string, what: string, opts: { body?: unknown; ok: number[]; accept?: string; signal?: AbortSignal }): Promise<Response> {
    let res: Response;
    try {
      res = await request(`${this.baseUrl}${path}`, {
        method,
        headers: {
          'user-agent': 'berth',
          accept: opts.accept ?? 'application/json',
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.credentials ? { authorization: basicAuthorization(this.credentials) } : {}),
        },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: opts.signal,
        dispatcher: this.dispatcher,
      });
    } catch (err) {
      // Cancelled: let the activity's own cancellation surface, not a registry error.
      if (opts.signal?.aborted) throw err;
      throw asRegistryError(err, `${what} on ${this.name}`);
    }
    if (!opts.ok.includes(res.statusCode)) throw await this.failure(res, what);
    return res;
  }

  private async parse<T>(res: Response, schema: z.ZodType<T>, what: string): Promise<T> {
    const text = await res.body.text();
    let parsed: z.ZodSafeParseResult<T> | undefined;
    try {
      parsed = schema.safeParse(JSON.parse(text));
    } catch {
      // not JSON: reported below
    }
    if (parsed?.success) return parsed.data;
    const problem = parsed ? z.prettifyError(parsed.error) : `not JSON: ${text.slice(0, 200)}`;
    throw new RegistryError('RegistryRejected', `${what} on ${this.name}: unexpected answer (${problem})`);
  }

  /** Harbor answers 201 with the new resource's path in Location; its last segment is the id. */
  private async createdId(res: Response, what: string): Promise<number> {
    await res.body.dump();
    const location = header(res, 'location') ?? '';
    const id = Number(location.split('/').pop());
    if (!location || !Number.isInteger(id)) throw new RegistryError('RegistryRejected', `${what} on ${this.name}: HTTP 201 without the new id in Location (${location || 'none'})`);
    return id;
  }

  /** Turns an unexpected answer into a classified error carrying Harbor's own code and message. */
  private failure(res: Response, what: string): Promise<RegistryError> {
    return responseFailure(res, what, this.name, this.credentials);
  }
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
