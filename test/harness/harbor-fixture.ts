import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, request as forward, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import { registryClient, startedRegistry, tempDir, type TestRegistry } from '../../testbed/berth.ts';
import type { HarborExchange } from './harbor-spec.ts';
import { createTokenService } from './token-issuer.ts';

const run = promisify(execFile);

type TaskStatus = 'Pending' | 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';

interface Endpoint {
  id: number;
  name: string;
  description: string;
  url: string;
  type: string;
  insecure: boolean;
  credential?: { type: string; access_key: string; access_secret: string };
  creation_time: string;
  update_time: string;
}

interface Policy {
  id: number;
  name: string;
  dest_registry: { id: number };
  trigger: { type: string };
  filters: { type: string; value: string }[];
  override: boolean;
  enabled: boolean;
  creation_time: string;
  update_time: string;
}

export interface FixtureProject {
  id: number;
  /** The user who created it: its project admin, who may push into it. */
  owner: string;
}

export interface FixtureTask {
  id: number;
  execution_id: number;
  status: TaskStatus;
  repository: string;
  tags: string[];
  log: string;
  start_time?: string;
  end_time?: string;
}

export interface FixtureExecution {
  id: number;
  policy_id: number;
  status: 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';
  status_text: string;
  start_time: string;
  end_time?: string;
  tasks: FixtureTask[];
  /** Started while the fixture was `stuck` or its jobservice hung: its tasks stay Pending. */
  stuck: boolean;
  abort: AbortController;
}

export interface HarborFixture {
  url: string;
  /** The system administrator. */
  username: string;
  password: string;
  /** The docker-registry behind /v2, logged in as the administrator (through the fixture's token service). */
  registry: TestRegistry;
  /** While true, executions started never progress: their tasks stay Pending until stopped. */
  stuck: boolean;
  /** While true, tasks report success without copying anything, as Harbor can (goharbor/harbor#22644). */
  skipCopies: boolean;
  /**
   * While true, Harbor's jobservice hangs: executions started stay Pending, a stop (which Harbor hands to the
   * jobservice and waits on) gets no answer until it recovers, and health reports the jobservice unhealthy.
   */
  jobserviceHangs: boolean;
  /** Harbor's read-only mode (configurations API): pushes are refused with 403 DENIED while it is on. */
  readOnly: boolean;
  projects: Map<string, FixtureProject>;
  executions: FixtureExecution[];
  /** Every request to the REST API (/api/v2.0) and its answer, as sent: what the spec check reads. */
  exchanges: HarborExchange[];
  stop(): Promise<void>;
}

const adapters = ['docker-registry', 'harbor'];
const triggers = ['manual', 'scheduled', 'event_based'];
const projectName = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
/** Harbor's components as v2.15.2's /health lists them (with no scanner installed). */
const components = ['core', 'database', 'jobservice', 'portal', 'redis', 'registry', 'registryctl'];
const readOnlyError = { code: 'DENIED', message: 'The system is in read only mode. Any modification is prohibited.' };
const now = () => new Date().toISOString();
/** Where each API answer is recorded: `send` reports through it. */
const recorders = new WeakMap<ServerResponse, (status: number, headers: Record<string, string>, body: string) => void>();

/**
 * A stand-in for Harbor (which cannot run here) that keeps Harbor v2.15.2's REST API for what berth uses, as its
 * swagger describes it and as a real Harbor behaves: health (7 components), projects (any user may create one),
 * replication endpoints (checked for health on every create and update, as Harbor does), policies (newest first),
 * executions and tasks; 201 with Location, `{"errors":[...]}` bodies with Harbor's codes, `page`/`page_size` with
 * X-Total-Count and Link. Like Harbor, it fronts a real docker-registry on /v2 whose tokens it issues on
 * /service/token (pushes only into existing projects, by their owner or the administrator; none while read-only),
 * and it runs executions for real: one task per matching repository, copied with skopeo.
 *
 * `guests` are users who may pull, look up and create projects, but get 403 on the system-level API (as a user
 * without a system role does in Harbor).
 */
export async function startHarborFixture(opts: { name: string; username?: string; password?: string; guests?: Record<string, string> }): Promise<HarborFixture> {
  const username = opts.username ?? 'admin';
  const password = opts.password ?? randomBytes(12).toString('hex');
  const users: Record<string, string> = { ...opts.guests, [username]: password };
  const projects = new Map<string, FixtureProject>([['library', { id: 1, owner: username }]]);
  const endpoints: Endpoint[] = [];
  const policies: Policy[] = [];
  const executions: FixtureExecution[] = [];
  const exchanges: HarborExchange[] = [];
  let lastId = 1;
  let closed = false;

  const tokens = createTokenService(tempDir(`harbor-${opts.name}`), users, {
    service: 'harbor-registry',
    issuer: 'harbor-token-issuer',
    grant: (user, { type, name, actions }) => {
      const admin = user === username;
      if (type === 'registry') return admin ? actions : [];
      // Harbor grants push only into an existing project, to members allowed to push: its owner, the administrator.
      const project = projects.get(name.split('/')[0]);
      return type === 'repository' ? actions.filter((a) => a === 'pull' || (project && (admin || project.owner === user))) : [];
    },
  });
  const server = createServer((req, res) => {
    serve(req, res).catch((err: Error) => fail(res, 500, 'UNKNOWN', err.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const registry = await startedRegistry(`${opts.name}-registry`, {
    auth: { token: { realm: `${url}/service/token`, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } },
    username,
    password,
  });
  const target = new URL(registry.url);

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requested = new URL(req.url ?? '/', url);
    if (requested.pathname.startsWith('/v2/')) return proxy(req, res);
    if (requested.pathname === '/service/token') return tokens.handle(req, res);
    let text = '';
    for await (const chunk of req) text += chunk;
    if (requested.pathname.startsWith('/api/')) record(req, res, text);
    return api(req, res, requested, text);
  }

  function record(req: IncomingMessage, res: ServerResponse, requestBody: string): void {
    recorders.set(res, (status, headers, body) => {
      const responseHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
      exchanges.push({ method: req.method ?? 'GET', url: req.url ?? '/', requestHeaders: req.headers, requestBody, status, responseHeaders, responseBody: body });
    });
  }

  async function api(req: IncomingMessage, res: ServerResponse, requested: URL, text: string): Promise<void> {
    const { pathname, searchParams } = requested;
    if (pathname === '/api/v2.0/health') return send(res, 200, await health());
    const [user, pass] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
      .toString()
      .split(':');
    if (!user || users[user] !== pass) return fail(res, 401, 'UNAUTHORIZED', 'unauthorized');
    // `/api/v2.0/replication/executions/7/tasks` -> `GET /replication/executions/{id}/tasks`, ids = [7]
    const route = `${req.method} ${pathname.replace(/^\/api\/v2\.0/, '').replace(/\/\d+/g, '/{id}')}`;
    const ids = [...pathname.matchAll(/\/(\d+)/g)].map((m) => Number(m[1]));
    // Any user may look up and create projects (Harbor's default project creation restriction: everyone).
    if (user !== username && route !== 'HEAD /projects' && route !== 'POST /projects') return fail(res, 403, 'FORBIDDEN', 'forbidden');
    let body: Record<string, any> = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      return fail(res, 400, 'BAD_REQUEST', 'invalid JSON in the request body');
    }
    const execution = executions.find((e) => e.id === ids[0]);
    switch (route) {
      case 'GET /configurations':
        return send(res, 200, { read_only: { value: fixture.readOnly, editable: true } });
      case 'PUT /configurations':
        if (typeof body.read_only === 'boolean') fixture.readOnly = body.read_only;
        return send(res, 200);
      case 'HEAD /projects': {
        // Harbor checks the name first: an invalid one is 400, with no body (a HEAD answer has none).
        const name = searchParams.get('project_name') ?? '';
        return send(res, !projectName.test(name) ? 400 : projects.has(name) ? 200 : 404);
      }
      case 'POST /projects': {
        const name = String(body.project_name ?? '');
        if (!projectName.test(name) || name.length > 255) return fail(res, 400, 'BAD_REQUEST', `project name "${name}" is not in lower case or contains illegal characters`);
        if (projects.has(name)) return fail(res, 409, 'CONFLICT', `The project named ${name} already exists`);
        projects.set(name, { id: ++lastId, owner: user });
        return created(res, `/api/v2.0/projects/${lastId}`);
      }
      case 'GET /registries': {
        const name = /^name=(.*)$/.exec(searchParams.get('q') ?? '')?.[1];
        return page(res, requested, endpoints.filter((e) => name === undefined || e.name === name).map(endpointView));
      }
      case 'POST /registries': {
        const endpoint: Endpoint = {
          id: 0,
          name: body.name,
          description: body.description ?? '',
          url: body.url,
          type: body.type,
          insecure: Boolean(body.insecure),
          credential: body.credential,
          creation_time: now(),
          update_time: now(),
        };
        const problem = endpointProblem(endpoint);
        if (problem) return fail(res, 400, 'BAD_REQUEST', problem);
        if (endpoints.some((e) => e.name === body.name)) return fail(res, 409, 'CONFLICT', `registry ${body.name} already exists`);
        if (!(await healthy(endpoint))) return fail(res, 400, 'BAD_REQUEST', 'the registry is unhealthy');
        endpoints.push({ ...endpoint, id: ++lastId });
        return created(res, `/api/v2.0/registries/${lastId}`);
      }
      case 'PUT /registries/{id}': {
        const endpoint = endpoints.find((e) => e.id === ids[0]);
        if (!endpoint) return fail(res, 404, 'NOT_FOUND', `registry ${ids[0]} not found`);
        const updated = { ...endpoint, ...pick(body, ['name', 'description', 'url', 'insecure']), update_time: now() };
        if (body.access_key !== undefined) updated.credential = { type: body.credential_type ?? 'basic', access_key: body.access_key, access_secret: body.access_secret ?? '' };
        const problem = endpointProblem(updated);
        if (problem) return fail(res, 400, 'BAD_REQUEST', problem);
        // Harbor checks the registry's health on every update, whatever changed.
        if (!(await healthy(updated))) return fail(res, 400, 'BAD_REQUEST', 'the registry is unhealthy');
        Object.assign(endpoint, updated);
        return send(res, 200);
      }
      case 'GET /replication/policies': {
        // `q=name=x` is exact, `q=name=~x` and the deprecated `name` fuzzy; newest first, as Harbor lists them.
        const [, fuzzy, wanted] = /^name=(~?)(.*)$/.exec(searchParams.get('q') ?? '') ?? [undefined, '~', searchParams.get('name') ?? ''];
        const matching = policies.filter((p) => (fuzzy ? p.name.includes(wanted) : p.name === wanted));
        return page(res, requested, [...matching].reverse().map(policyView));
      }
      case 'POST /replication/policies':
      case 'PUT /replication/policies/{id}': {
        const existing = policies.find((p) => p.id === ids[0]);
        if (ids.length && !existing) return fail(res, 404, 'NOT_FOUND', `policy ${ids[0]} not found`);
        const policy: Policy = {
          id: existing?.id ?? lastId + 1,
          name: body.name,
          dest_registry: { id: body.dest_registry?.id },
          trigger: { type: body.trigger?.type ?? 'manual' },
          filters: body.filters ?? [],
          override: Boolean(body.override),
          enabled: Boolean(body.enabled),
          creation_time: existing?.creation_time ?? now(),
          update_time: now(),
        };
        if (!policy.name) return fail(res, 400, 'BAD_REQUEST', 'name is required');
        if (!endpoints.some((e) => e.id === policy.dest_registry.id)) return fail(res, 400, 'BAD_REQUEST', `registry ${policy.dest_registry.id} not found`);
        if (!triggers.includes(policy.trigger.type)) return fail(res, 400, 'BAD_REQUEST', `invalid trigger type ${policy.trigger.type}`);
        if (policies.some((p) => p.name === policy.name && p.id !== policy.id)) return fail(res, 409, 'CONFLICT', `policy ${policy.name} already exists`);
        if (existing) {
          Object.assign(existing, policy);
          return send(res, 200);
        }
        policies.push({ ...policy, id: ++lastId });
        return created(res, `/api/v2.0/replication/policies/${lastId}`);
      }
      case 'POST /replication/executions': {
        const policy = policies.find((p) => p.id === body.policy_id);
        if (!policy) return fail(res, 404, 'NOT_FOUND', `policy ${body.policy_id} not found`);
        const stuck = fixture.stuck || fixture.jobserviceHangs;
        const started: FixtureExecution = { id: ++lastId, policy_id: policy.id, status: 'InProgress', status_text: '', start_time: now(), tasks: [], stuck, abort: new AbortController() };
        executions.push(started);
        // Harbor answers 201 at once and runs the execution in the background, recording a failure on it.
        void perform(started, policy).catch((err: Error) => finish(started, 'Failed', err.message));
        return created(res, `/api/v2.0/replication/executions/${started.id}`);
      }
      case 'GET /replication/executions/{id}':
        return execution ? send(res, 200, executionView(execution)) : fail(res, 404, 'NOT_FOUND', `execution ${ids[0]} not found`);
      case 'PUT /replication/executions/{id}':
        if (!execution) return fail(res, 404, 'NOT_FOUND', `execution ${ids[0]} not found`);
        // Harbor stops the tasks through its jobservice and waits for it: no answer while it hangs. The stop goes
        // through once the jobservice is back, whether or not the caller still waits.
        while (fixture.jobserviceHangs && !closed) await sleep(100);
        stopExecution(execution);
        return res.destroyed ? undefined : send(res, 200);
      case 'GET /replication/executions/{id}/tasks':
        if (!execution) return fail(res, 404, 'NOT_FOUND', `execution ${ids[0]} not found`);
        return page(res, requested, execution.tasks.map(taskView));
      case 'GET /replication/executions/{id}/tasks/{id}/log': {
        const task = execution?.tasks.find((t) => t.id === ids[1]);
        if (!task) return fail(res, 404, 'NOT_FOUND', `execution ${ids[0]} contains no task with ID ${ids[1]}`);
        // Asked for JSON (berth's default Accept), Harbor writes the log as one JSON string.
        return /application\/json/.test(req.headers.accept ?? '') ? send(res, 200, task.log) : send(res, 200, task.log, { 'content-type': 'text/plain' });
      }
      default:
        return fail(res, 404, 'NOT_FOUND', `no route for ${req.method} ${pathname}`);
    }
  }

  /**
   * /v2 goes to the registry, Host header kept so that its Location headers point back here. While read-only,
   * Harbor refuses every write before it reaches the registry: 403 DENIED.
   */
  function proxy(req: IncomingMessage, res: ServerResponse): void {
    if (fixture.readOnly && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method ?? '')) {
      req.resume();
      return void res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [readOnlyError] }));
    }
    const upstream = forward({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  async function health() {
    const registryHealth = await request(`${registry.url}/v2/`).then(
      async (r) => (await r.body.dump(), r.statusCode === 200 || r.statusCode === 401 ? { status: 'healthy' } : { status: 'unhealthy', error: `HTTP ${r.statusCode}` }),
      (err: Error) => ({ status: 'unhealthy', error: err.message }),
    );
    const of = (name: string) => (name === 'registry' ? registryHealth : name === 'jobservice' && fixture.jobserviceHangs ? { status: 'unhealthy', error: 'context deadline exceeded' } : { status: 'healthy' });
    const list = components.map((name) => ({ name, ...of(name) }));
    return { status: list.every((c) => c.status === 'healthy') ? 'healthy' : 'unhealthy', components: list };
  }

  /**
   * Harbor's check of a replication endpoint: the target's /v2/ answers with its credential, directly (Basic) or
   * through its token service (Bearer). A target that is down or refuses the credential is unhealthy.
   */
  async function healthy(endpoint: Endpoint): Promise<boolean> {
    const { access_key: user, access_secret: secret } = endpoint.credential ?? {};
    const authorization = user ? `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}` : undefined;
    const get = async (to: string) => {
      const res = await request(to, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(5000) });
      await res.body.dump();
      return res;
    };
    try {
      const res = await get(`${endpoint.url.replace(/\/+$/, '')}/v2/`);
      const challenge = String(res.headers['www-authenticate'] ?? '');
      const realm = /realm="([^"]+)"/.exec(challenge)?.[1];
      const service = /service="([^"]+)"/.exec(challenge)?.[1];
      if (res.statusCode === 200) return true;
      if (res.statusCode !== 401 || !/^Bearer /i.test(challenge) || !realm) return false;
      return (await get(`${realm}${service ? `?service=${encodeURIComponent(service)}` : ''}`)).statusCode === 200;
    } catch {
      return false;
    }
  }

  /** Lists what the policy's filters match (one task per repository), then copies it unless stuck or stopped. */
  async function perform(execution: FixtureExecution, policy: Policy): Promise<void> {
    const endpoint = endpoints.find((e) => e.id === policy.dest_registry.id)!;
    const filter = (type: string) => glob(policy.filters.find((f) => f.type === type)?.value);
    const [names, tags] = [filter('name'), filter('tag')];
    const client = registryClient(registry);
    const tasks: FixtureTask[] = [];
    try {
      for await (const repositories of client.listRepositories()) {
        for (const repository of repositories.filter((r) => names.test(r))) {
          const matching: string[] = [];
          for await (const page of client.listTags(repository)) matching.push(...page.filter((t) => tags.test(t)));
          if (matching.length) tasks.push({ id: ++lastId, execution_id: execution.id, status: 'Pending', repository, tags: matching, log: '' });
        }
      }
    } finally {
      await client.close();
    }
    if (execution.status !== 'InProgress') return;
    execution.tasks = tasks;
    if (!tasks.length) return finish(execution, 'Succeed', 'no resources need to be replicated');
    if (execution.stuck) return;
    for (const task of tasks) {
      if (task.status !== 'Pending') continue;
      task.status = 'InProgress';
      task.start_time = now();
      const status = await copy(task, endpoint, execution.abort.signal);
      // A stop meanwhile already marked the task Stopped.
      if (execution.status === 'InProgress') Object.assign(task, { status, end_time: now() });
    }
    const statuses = tasks.map((t) => t.status);
    if (execution.status === 'InProgress') finish(execution, statuses.includes('Failed') ? 'Failed' : statuses.includes('Stopped') ? 'Stopped' : 'Succeed');
  }

  async function copy(task: FixtureTask, endpoint: Endpoint, signal: AbortSignal): Promise<TaskStatus> {
    const destination = new URL(endpoint.url).host;
    const destCreds = endpoint.credential ? ['--dest-creds', `${endpoint.credential.access_key}:${endpoint.credential.access_secret}`] : [];
    for (const tag of fixture.skipCopies ? [] : task.tags) {
      const image = `${task.repository}:${tag}`;
      task.log += `${now()} [INFO] copying ${new URL(url).host}/${image} to ${destination}/${image}\n`;
      try {
        await run(
          'skopeo',
          [
            'copy',
            '--all',
            '--preserve-digests',
            '--quiet',
            '--src-tls-verify=false',
            '--dest-tls-verify=false',
            '--src-creds',
            `${username}:${password}`,
            ...destCreds,
            `docker://${new URL(url).host}/${image}`,
            `docker://${destination}/${image}`,
          ],
          { signal },
        );
      } catch (err) {
        const e = err as Error & { stderr?: string };
        task.log += `${now()} [ERROR] ${(e.stderr || e.message).trim().replace(/\s*\n\s*/g, ' ')}\n`;
        return 'Failed';
      }
    }
    return 'Succeed';
  }

  function stopExecution(execution: FixtureExecution): void {
    if (execution.status !== 'InProgress') return;
    execution.abort.abort();
    for (const task of execution.tasks) if (task.status === 'Pending' || task.status === 'InProgress') Object.assign(task, { status: 'Stopped', end_time: now() });
    finish(execution, 'Stopped');
  }

  function finish(execution: FixtureExecution, status: FixtureExecution['status'], text = ''): void {
    Object.assign(execution, { status, status_text: text, end_time: now() });
  }

  function endpointProblem(e: Endpoint): string | undefined {
    if (!e.name) return 'name is required';
    if (!adapters.includes(e.type)) return `adapter factory for ${e.type} not found`;
    if (!/^https?:\/\/[^/]+/.test(e.url ?? '')) return `invalid url ${e.url}`;
    return undefined;
  }

  function endpointView({ credential, ...e }: Endpoint) {
    return { ...e, ...(credential && { credential: { ...credential, access_secret: credential.access_secret ? '*****' : '' } }), status: 'healthy' };
  }

  function policyView(p: Policy) {
    return { ...p, dest_registry: endpointView(endpoints.find((e) => e.id === p.dest_registry.id)!), dest_namespace: '', replicate_deletion: false };
  }

  const fixture: HarborFixture = {
    url,
    username,
    password,
    registry,
    stuck: false,
    skipCopies: false,
    jobserviceHangs: false,
    readOnly: false,
    projects,
    executions,
    exchanges,
    async stop() {
      closed = true;
      for (const e of executions) e.abort.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.stop();
    },
  };
  return fixture;
}

function executionView({ tasks, stuck: _, abort: __, ...e }: FixtureExecution) {
  const count = (...statuses: TaskStatus[]) => tasks.filter((t) => statuses.includes(t.status)).length;
  return { ...e, trigger: 'MANUAL', total: tasks.length, succeed: count('Succeed'), failed: count('Failed'), in_progress: count('Pending', 'InProgress'), stopped: count('Stopped') };
}

/** Harbor names a task's resources `<repository> [<n> item(s) in total]`. */
function taskView({ repository, tags, log: _, ...t }: FixtureTask) {
  const resource = `${repository} [${tags.length} item(s) in total]`;
  return { ...t, operation: 'copy', resource_type: 'image', src_resource: resource, dst_resource: resource };
}

/** Harbor's doublestar filters: `**` crosses `/`, `*` and `?` do not, `{a,b}` is either; none matches all. */
function glob(pattern: string | undefined): RegExp {
  if (!pattern) return /^/;
  const special: Record<string, string> = { '**': '.*', '*': '[^/]*', '?': '[^/]', '{': '(?:', '}': ')', ',': '|' };
  return new RegExp(`^${pattern.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*\*|[*?{},]/g, (m) => special[m])}$`);
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined && o[k] !== null).map((k) => [k, o[k]]));
}

/** One page of a list, as Harbor serves it: `page` (from 1), `page_size` (10 by default, at most 100). */
function page(res: ServerResponse, requested: URL, items: unknown[]): void {
  const number = Math.max(1, Number(requested.searchParams.get('page') ?? 1));
  const size = Math.min(100, Math.max(1, Number(requested.searchParams.get('page_size') ?? 10)));
  const link = (to: number, rel: string) => {
    const other = new URL(requested);
    other.searchParams.set('page', String(to));
    return `<${other.pathname}${other.search}>; rel="${rel}"`;
  };
  const links = [...(number > 1 ? [link(number - 1, 'prev')] : []), ...(number * size < items.length ? [link(number + 1, 'next')] : [])];
  send(res, 200, items.slice((number - 1) * size, number * size), { 'x-total-count': String(items.length), ...(links.length ? { link: links.join(' , ') } : {}) });
}

/** Answers like Harbor's API (a JSON body, or text when a content type says so, and a request id) and records it. */
function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const all = { 'x-request-id': randomUUID(), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers };
  recorders.get(res)?.(status, all, text);
  res.writeHead(status, all).end(text || undefined);
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { errors: [{ code, message }] });
}

function created(res: ServerResponse, location: string): void {
  send(res, 201, undefined, { location });
}
