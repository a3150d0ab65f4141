// berth on Harbor's REST API v2.0, against a Harbor-API-compatible fixture that fronts a real docker-registry and
// runs replications with skopeo; what arrives is checked with skopeo, independently of berth. The fixture behaves
// as Harbor v2.15.2 does where berth met it (endpoints checked for health, logs as JSON when asked for JSON, stops
// that wait on the jobservice, policies newest first, read-only refusals, 7 health components), and every request
// berth sent and every answer the fixture gave are held to Harbor's own API description at the end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { createHaActivities } from '../activities/ha.ts';
import { basicAuthorization, type Credentials } from '../activities/registry/auth.ts';
import { copyImage } from '../activities/registry/copy-image.ts';
import { RegistryError, type RegistryErrorType } from '../activities/registry/errors.ts';
import { registryAdapters } from '../activities/registry/adapters/index.ts';
import { HarborClient, unhealthyForImages, type HarborExecution } from '../activities/registry/adapters/harbor/client.ts';
import { replicateWithHarbor, type HarborReplicationTarget, type ReplicateWithHarborInput } from '../activities/registry/adapters/harbor/replicate.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { startHarborFixture, type HarborFixture } from './harness/harbor-fixture.ts';
import { startRegistryProxy } from './harness/proxy.ts';
import { harborOperation, harborSpecProblems, type HarborExchange } from './harness/harbor-spec.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';

let source: HarborFixture;
let harborTarget: HarborFixture;
let plain: TestRegistry;
let image: BuiltImage;
let harbor: HarborClient;
let plainTarget: HarborReplicationTarget;
const clients: HarborClient[] = [];

/** A client of the source Harbor, logged in as its administrator unless told otherwise. */
function sourceClient(credentials: Credentials = source): HarborClient {
  const client = new HarborClient({ name: 'harbor-a', baseUrl: source.url, credentials: { username: credentials.username, password: credentials.password } });
  clients.push(client);
  return client;
}

/** A list from Harbor's API, read as a user would with curl. */
async function harborList(h: HarborFixture, path: string): Promise<Record<string, any>[]> {
  const res = await request(`${h.url}/api/v2.0${path}`, { headers: { authorization: basicAuthorization(h) } });
  assert.equal(res.statusCode, 200);
  return (await res.body.json()) as Record<string, any>[];
}

/** The requests of one operation the source Harbor has received so far, e.g. `PUT /registries/{id}`. */
function received(operation: string): HarborExchange[] {
  return source.exchanges.filter((e) => harborOperation(e)?.startsWith(`${operation} (`));
}

function replicate(opts: Partial<ReplicateWithHarborInput> = {}) {
  return replicateWithHarbor({ source: harbor, target: plainTarget, repository: 'team/app', tag: '1.0', deadlineMs: 60_000, ...opts });
}

/** A registry of its own that Harbor has replicated to once (its endpoint exists, as wanted), then stopped. */
async function targetReplicatedToThenDown(name: string): Promise<{ target: HarborReplicationTarget; registry: TestRegistry }> {
  const registry = await startedRegistry(name);
  const target: HarborReplicationTarget = { name, url: registry.url, kind: 'distribution', credentials: { username: registry.username!, password: registry.password! } };
  await replicate({ target });
  await registry.stop();
  return { target, registry };
}

/** Runs `fn` while the source Harbor misbehaves as `fault` says. */
async function whileSource(fault: 'stuck' | 'skipCopies' | 'jobserviceHangs', fn: () => Promise<void>): Promise<void> {
  source[fault] = true;
  try {
    await fn();
  } finally {
    source[fault] = false;
  }
}

function failure(type: RegistryErrorType, message: RegExp, fields: { status?: number; code?: string } = {}) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError, String(err));
    assert.equal(err.type, type);
    assert.match(err.message, message);
    if (fields.status) assert.equal(err.opts.status, fields.status);
    if (fields.code) assert.equal(err.opts.code, fields.code);
    return true;
  };
}

before(async () => {
  [source, harborTarget, plain] = await Promise.all([startHarborFixture({ name: 'harbor-a', guests: { dev: 'dev-password' } }), startHarborFixture({ name: 'harbor-b' }), startedRegistry('plain')]);
  harbor = sourceClient();
  plainTarget = { name: 'plain', url: plain.url, kind: 'distribution', credentials: { username: plain.username!, password: plain.password! } };
  await harbor.ensureProject('team');
  image = await buildOciLayout(tempDir('harbor-layout'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 256 << 10, gzip: true }, { size: 64 << 10 }] }]);
  await pushWithSkopeo(image, source, 'team/app');
});

after(async () => {
  for (const c of clients) await c.close();
  await Promise.all([source?.stop(), harborTarget?.stop(), plain?.stop()]);
});

describe('HarborClient', () => {
  test("health names Harbor's 7 components; images flow while the jobservice hangs, not while the registry is down", async () => {
    const anonymous = new HarborClient({ name: 'harbor-b', baseUrl: harborTarget.url });
    try {
      const names = ['core', 'database', 'jobservice', 'portal', 'redis', 'registry', 'registryctl'];
      assert.deepEqual(await anonymous.health(), { status: 'healthy', components: names.map((name) => ({ name, status: 'healthy' })) });
      harborTarget.jobserviceHangs = true;
      const hung = await anonymous.health();
      assert.deepEqual([hung.status, hung.components.find((c) => c.name === 'jobservice')?.status], ['unhealthy', 'unhealthy']);
      assert.deepEqual(unhealthyForImages(hung), [], 'pushes and pulls do not go through the jobservice');
      harborTarget.jobserviceHangs = false;
      await harborTarget.registry.stop();
      const down = await anonymous.health();
      assert.equal(down.status, 'unhealthy');
      assert.match(down.components.find((c) => c.name === 'registry')?.error ?? '', /ECONNREFUSED/);
      assert.match(unhealthyForImages(down).join(), /^registry \(.*ECONNREFUSED.*\)$/);
    } finally {
      harborTarget.jobserviceHangs = false;
      await harborTarget.registry.start();
      await anonymous.close();
    }
  });

  test('the HA probe counts a Harbor up while its jobservice hangs, and down while its registry is', async () => {
    const login = { ...harborTarget.registry, name: 'harbor-b', url: harborTarget.url, username: harborTarget.username, password: harborTarget.password };
    const { config } = testConfig('harbor-probe', '127.0.0.1:7233', [{ registry: login, idc: 'idc-b', kind: 'harbor' }]);
    const { probeRegistries } = createHaActivities(config, registryAdapters(config));
    const probe = async () => (await probeRegistries({ registries: ['harbor-b'], timeoutMs: 5000 }))['harbor-b'];
    harborTarget.jobserviceHangs = true;
    try {
      assert.equal((await probe()).up, true);
      await harborTarget.registry.stop();
      const down = await probe();
      assert.equal(down.up, false);
      assert.match(down.detail ?? '', /^Harbor reports registry \(.*\) unhealthy$/);
    } finally {
      harborTarget.jobserviceHangs = false;
      await harborTarget.registry.start();
    }
  });

  test('the HA probe keeps one Harbor client per worker: probes reuse its connections, not one each', async () => {
    const proxy = await startRegistryProxy(harborTarget.url);
    try {
      const login = { ...harborTarget.registry, name: 'harbor-b', url: proxy.url, username: harborTarget.username, password: harborTarget.password };
      const { config } = testConfig('harbor-probe-reuse', '127.0.0.1:7233', [{ registry: login, idc: 'idc-b', kind: 'harbor' }]);
      const { probeRegistries } = createHaActivities(config, registryAdapters(config));
      for (let i = 0; i < 10; i++) assert.equal((await probeRegistries({ registries: ['harbor-b'], timeoutMs: 5000 }))['harbor-b'].up, true);
      // The pool may open a second connection when a probe follows the last answer at once; a client per probe opens ten.
      assert.ok(proxy.connections <= 3, `ten probes opened ${proxy.connections} connections`);
    } finally {
      await proxy.close();
    }
  });

  test('ensure* find what exists by name, update it only when it differs, and never duplicate it', async () => {
    const credential = { access_key: plain.username!, access_secret: plain.password! };
    const endpoint = { name: 'berth-idem', url: plain.url, type: 'docker-registry' as const, credential, insecure: false };
    const id = await harbor.ensureRegistryEndpoint(endpoint);
    const updates = received('PUT /registries/{id}').length;
    assert.equal(await harbor.ensureRegistryEndpoint(endpoint), id);
    assert.equal(received('PUT /registries/{id}').length, updates, 'an endpoint as wanted is not updated');
    // The same registry under another name of its host: a changed URL is updated (and checked by Harbor).
    const moved = plain.url.replace('127.0.0.1', 'localhost');
    assert.equal(await harbor.ensureRegistryEndpoint({ ...endpoint, url: moved }), id);
    assert.equal(received('PUT /registries/{id}').length, updates + 1);
    const endpoints = await harborList(source, '/registries?q=name%3Dberth-idem');
    assert.deepEqual(
      endpoints.map((e) => [e.id, e.url, e.credential]),
      [[id, moved, { type: 'basic', access_key: plain.username, access_secret: '*****' }]],
    );
    assert.doesNotMatch(JSON.stringify(endpoints), new RegExp(plain.password!), 'Harbor never shows the secret, and berth stores only a salted hash of it');

    const policy = { name: 'berth-idem', destRegistryId: id, filters: { name: 'team/app', tag: '1.0' }, override: true };
    // Harbor's `name` parameter matches substrings and lists the newest first: berth-idem-2 is found for berth-idem.
    const longer = await harbor.ensureReplicationPolicy({ ...policy, name: 'berth-idem-2' });
    const policyId = await harbor.ensureReplicationPolicy(policy);
    assert.notEqual(policyId, longer);
    assert.equal(await harbor.ensureReplicationPolicy(policy), policyId);
    assert.equal(await harbor.ensureReplicationPolicy({ ...policy, filters: { name: 'team/app', tag: '2.0' } }), policyId);
    const policies = await harborList(source, '/replication/policies?name=berth-idem');
    assert.deepEqual(
      policies.map((p) => [p.name, p.dest_registry.id, p.trigger.type, p.enabled, p.filters]),
      [
        [
          'berth-idem',
          id,
          'manual',
          true,
          [
            { type: 'name', value: 'team/app' },
            { type: 'tag', value: '2.0' },
          ],
        ],
        [
          'berth-idem-2',
          id,
          'manual',
          true,
          [
            { type: 'name', value: 'team/app' },
            { type: 'tag', value: '1.0' },
          ],
        ],
      ],
    );

    // Two workers creating one project at once: one gets 409 CONFLICT, which means it exists.
    await Promise.all([harbor.ensureProject('shared'), harbor.ensureProject('shared')]);
    assert.ok(source.projects.has('shared'));
  });

  test('listTasks reads every page; name and tag filters match like Harbor globs', async () => {
    const dev = await buildOciLayout(tempDir('harbor-dev'), 'dev', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 1024 }] }]);
    await Promise.all([pushWithSkopeo(image, source, 'team/paged-a'), pushWithSkopeo(image, source, 'team/paged-b'), pushWithSkopeo(dev, source, 'team/paged-a')]);
    const endpointId = await harbor.ensureRegistryEndpoint({ name: 'berth-paged', url: plain.url, type: 'docker-registry', credential: { access_key: plain.username!, access_secret: plain.password! }, insecure: false });
    const policyId = await harbor.ensureReplicationPolicy({ name: 'berth-paged', destRegistryId: endpointId, filters: { name: 'team/paged-*', tag: '1.*' }, override: true });
    const id = await harbor.startExecution(policyId);
    let execution: HarborExecution;
    while ((execution = await harbor.getExecution(id)).status === 'InProgress') await sleep(200);
    assert.deepEqual([execution.status, execution.total, execution.succeed], ['Succeed', 2, 2]);
    const tasks = await harbor.listTasks(id, 1);
    assert.deepEqual(tasks.map((t) => t.src_resource).sort(), ['team/paged-a [1 item(s) in total]', 'team/paged-b [1 item(s) in total]']);
    assert.equal(await digestWithSkopeo(plain, 'team/paged-b:1.0'), image.digest);
  });

  test('wrong credentials and missing permissions fail as RegistryAuthError naming the user', async () => {
    const wrong = sourceClient({ username: source.username, password: 'wrong' });
    await assert.rejects(
      wrong.ensureReplicationPolicy({ name: 'berth-wrong', destRegistryId: 1, filters: {}, override: true }),
      failure('RegistryAuthError', /ensure replication policy berth-wrong on harbor-a: HTTP 401 UNAUTHORIZED: unauthorized — harbor-a refused user "admin"/, { status: 401, code: 'UNAUTHORIZED' }),
    );
    const guest = sourceClient({ username: 'dev', password: 'dev-password' });
    await assert.rejects(
      guest.ensureRegistryEndpoint({ name: 'berth-guest', url: plain.url, type: 'docker-registry', insecure: false }),
      failure('RegistryAuthError', /ensure registry endpoint berth-guest on harbor-a: HTTP 403 FORBIDDEN: forbidden — harbor-a refused user "dev"/, { status: 403 }),
    );
  });

  test('a user who is no administrator creates a project and pushes into it, as Harbor lets every user', async () => {
    const dev = { username: 'dev', password: 'dev-password', url: source.url };
    await sourceClient(dev).ensureProject('dev-team');
    assert.equal(source.projects.get('dev-team')?.owner, 'dev');
    await pushWithSkopeo(image, dev, 'dev-team/app');
    assert.equal(await digestWithSkopeo(source, 'dev-team/app:1.0'), image.digest);
    await assert.rejects(pushWithSkopeo(image, dev, 'team/not-mine'), 'not into a project of someone else');
  });

  test("Harbor's error bodies give the error its code and message; a project name Harbor would not take is named", async () => {
    // HEAD /projects answers 400 with no body at all: berth says what is wrong.
    await assert.rejects(
      harbor.ensureProject('Team Two'),
      failure('RegistryRejected', /^ensure project Team Two on harbor-a: HTTP 400: "Team Two" is not a Harbor project name \(lower-case letters and digits, joined by \. _ -\)$/, { status: 400 }),
    );
    assert.equal(source.projects.has('Team Two'), false);
    await assert.rejects(
      harbor.ensureReplicationPolicy({ name: 'berth-nowhere', destRegistryId: 999_999, filters: {}, override: true }),
      failure('RegistryRejected', /HTTP 400 BAD_REQUEST: registry 999999 not found/, { code: 'BAD_REQUEST' }),
    );
    await assert.rejects(harbor.startExecution(999_999), failure('RegistryRejected', /start replication of policy 999999 on harbor-a: HTTP 404 NOT_FOUND: policy 999999 not found/, { status: 404, code: 'NOT_FOUND' }));
  });

  test('read-only mode (the fence of a failover) refuses pushes with 403 DENIED, which berth reports as a fence, not a login', async () => {
    const pushAgain = () => pushWithSkopeo(image, source, 'team/fenced');
    const into = registryClient({ ...source.registry, url: source.url, username: source.username, password: source.password });
    const from = registryClient(source.registry);
    await harbor.setReadOnly(true);
    try {
      assert.equal(source.readOnly, true);
      await assert.rejects(pushAgain, /denied: The system is in read only mode/i);
      await assert.rejects(
        copyImage({ source: from, sourceRepository: 'team/app', target: into, targetRepository: 'team/fenced-copy', reference: '1.0', concurrency: 2 }),
        failure('RegistryReadOnly', /HTTP 403 DENIED: The system is in read only mode\. Any modification is prohibited\. — harbor-a-registry is read-only \(fenced\): it refuses writes whatever the credentials$/, {
          status: 403,
          code: 'DENIED',
        }),
      );
    } finally {
      await harbor.setReadOnly(false);
      await Promise.all([into.close(), from.close()]);
    }
    await pushAgain();
    assert.equal(await digestWithSkopeo(source, 'team/fenced:1.0'), image.digest);
  });
});

describe('replicateWithHarbor', () => {
  test('pushes to a plain docker-registry with Basic auth, then verifies the digest; a rerun reuses endpoint and policy', async () => {
    const polls: HarborExecution[] = [];
    const result = await replicate({ onPoll: (e) => polls.push(e) });
    assert.equal(result.digest, image.digest);
    assert.deepEqual(result.tasks, { total: 1, succeed: 1, failed: 0 });
    assert.equal(await digestWithSkopeo(plain, 'team/app:1.0'), image.digest, 'skopeo reads the same digest from the target');
    assert.deepEqual([polls.at(-1)?.id, polls.at(-1)?.status], [result.executionId, 'Succeed']);
    const [task] = await harbor.listTasks(result.executionId);
    assert.deepEqual([task.status, task.src_resource], ['Succeed', 'team/app [1 item(s) in total]']);

    const writes = () => ['POST /registries', 'PUT /registries/{id}', 'POST /replication/policies', 'PUT /replication/policies/{id}'].map((op) => received(op).length);
    const before = writes();
    const again = await replicate();
    assert.notEqual(again.executionId, result.executionId);
    assert.deepEqual(writes(), before, 'endpoint and policy as wanted: nothing written');
    assert.equal((await harborList(source, '/registries?q=name%3Dberth-plain')).length, 1);
    const policies = await harborList(source, '/replication/policies?name=berth-team-app-to-plain');
    assert.deepEqual(
      policies.map((p) => [p.dest_registry.url, p.override, p.filters]),
      [
        [
          plain.url,
          true,
          [
            { type: 'name', value: 'team/app' },
            { type: 'tag', value: '1.0' },
          ],
        ],
      ],
    );
  });

  test('to another Harbor: the project is created there first', async () => {
    assert.equal(harborTarget.projects.has('team'), false);
    const target: HarborReplicationTarget = { name: 'harbor-b', url: harborTarget.url, kind: 'harbor', credentials: { username: harborTarget.username, password: harborTarget.password } };
    const result = await replicate({ target });
    assert.equal(harborTarget.projects.has('team'), true);
    assert.equal(await digestWithSkopeo(harborTarget, 'team/app:1.0'), image.digest);
    assert.equal(result.digest, image.digest);
    const [endpoint] = await harborList(source, '/registries?q=name%3Dberth-harbor-b');
    assert.deepEqual([endpoint.type, endpoint.url], ['harbor', harborTarget.url]);
  });

  test('a wrong password: Harbor finds the target unhealthy, berth says the target refuses the login, before any execution', async () => {
    const rotated: HarborReplicationTarget = { ...plainTarget, name: 'plain-rotated' };
    await replicate({ target: rotated });
    const executions = source.executions.length;
    const typo = { ...rotated, credentials: { username: plain.username!, password: 'wrong' } };
    await assert.rejects(
      replicate({ target: typo }),
      failure(
        'RegistryAuthError',
        /^target unhealthy: harbor-a cannot reach plain-rotated \(http:\/\/127\.0\.0\.1:\d+\) with its credential; from this worker: ping on plain-rotated: HTTP 401 UNAUTHORIZED: authentication required — plain-rotated refused user "berth"$/,
      ),
    );
    assert.equal(source.executions.length, executions, 'no execution started');
    // Harbor kept the credential it had; the corrected one matches it, so nothing is sent again.
    const updates = received('PUT /registries/{id}').length;
    assert.deepEqual((await replicate({ target: rotated })).tasks, { total: 1, succeed: 1, failed: 0 });
    assert.equal(received('PUT /registries/{id}').length, updates);
  });

  test('a target that went down: the unchanged endpoint is left alone, and the failed execution says why, from its log as text', async () => {
    const { target, registry } = await targetReplicatedToThenDown('plain-flaky');
    try {
      const updates = received('PUT /registries/{id}').length;
      let error: unknown;
      await replicate({ target }).catch((err) => (error = err));
      failure(
        'RegistryRejected',
        /^Harbor execution \d+ on harbor-a replicating team\/app:1.0 to plain-flaky ended Failed: 1 task\(s\): 0 succeeded, 1 failed, 0 in progress, 0 stopped; task \d+ team\/app \[1 item\(s\) in total\] -> team\/app \[1 item\(s\) in total\]: \d{4}-\S+Z \[ERROR\] .*connection refused"$/,
      )(error);
      assert.equal(received('PUT /registries/{id}').length, updates, 'the endpoint was not updated (Harbor would have refused it as unhealthy)');
      assert.doesNotMatch((error as Error).message, /\\n/, 'the last line of the log as text, not the log as a JSON string');
    } finally {
      await registry.stop();
    }
  });

  test('a changed endpoint whose target is down: target unhealthy, reported as the target being down (retried)', async () => {
    const { target, registry } = await targetReplicatedToThenDown('plain-moving');
    try {
      const moved = { ...target, url: target.url.replace('127.0.0.1', 'localhost') };
      let error: unknown;
      await replicate({ target: moved }).catch((err) => (error = err));
      failure('RegistryUnavailable', /^target unhealthy: harbor-a cannot reach plain-moving \(http:\/\/localhost:\d+\) with its credential; from this worker: ping on plain-moving: .*ECONNREFUSED/)(error);
      assert.equal((error as RegistryError).retryable, true);
    } finally {
      await registry.stop();
    }
  });

  test('a success that Harbor reports without the image arriving fails the replication', async () => {
    await pushWithSkopeo(image, source, 'team/unverified');
    await whileSource('skipCopies', async () => {
      await assert.rejects(
        replicate({ repository: 'team/unverified' }),
        failure('DigestMismatch', new RegExp(`^Harbor execution \\d+ on harbor-a reported success \\(1 task\\(s\\): 1 succeeded, 0 failed, 0 in progress, 0 stopped\\), but plain has no team/unverified:1.0, not ${image.digest}$`)),
      );
    });
  });

  test('a stuck execution is stopped at the deadline and reported with its tasks', async () => {
    await whileSource('stuck', async () => {
      let error: unknown;
      await replicate({ deadlineMs: 2500 }).catch((err) => (error = err));
      const execution = source.executions.at(-1)!;
      failure(
        'RegistryRejected',
        new RegExp(`^Harbor execution ${execution.id} on harbor-a was stuck: still InProgress after (\\d+\\.\\d) s \\(1 task\\(s\\): 0 succeeded, 0 failed, 1 in progress, 0 stopped\\); berth stopped it$`),
      )(error);
      assert.equal((error as RegistryError).retryable, false);
      assert.ok(Number(/after ([\d.]+) s/.exec((error as Error).message)![1]) >= 2.5);
      assert.equal((await harbor.getExecution(execution.id)).status, 'Stopped');
      assert.deepEqual(
        (await harbor.listTasks(execution.id)).map((t) => t.status),
        ['Stopped'],
      );
    });
  });

  test('a stop while the jobservice hangs is bounded and reported; so is the stop of a cancellation', async () => {
    await whileSource('jobserviceHangs', async () => {
      const started = Date.now();
      let error: unknown;
      await replicate({ deadlineMs: 1500, stopTimeoutMs: 1000 }).catch((err) => (error = err));
      const execution = source.executions.at(-1)!;
      failure(
        'RegistryRejected',
        new RegExp(
          `^Harbor execution ${execution.id} on harbor-a was stuck: still InProgress after \\d+\\.\\d s \\(.*\\); berth asked harbor-a to stop it and had no answer within 1\\.0 s \\(Harbor waits on its jobservice, which may hang\\): it may still be running$`,
        ),
      )(error);
      // Generous margins for a shared machine: the point is seconds, not Harbor's 60 s HTTP timeout.
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
      assert.equal(execution.status, 'InProgress', 'Harbor has not stopped it');

      const cancel = new AbortController();
      const cancelledAt = { ms: 0 };
      await assert.rejects(replicate({ signal: cancel.signal, stopTimeoutMs: 1000, onPoll: () => ((cancelledAt.ms = Date.now()), cancel.abort()) }), { name: 'AbortError' });
      assert.ok(Date.now() - cancelledAt.ms < 15_000, 'the cancellation returned without waiting for Harbor');
    });
  });

  test('cancellation stops the execution on Harbor', async () => {
    await whileSource('stuck', async () => {
      const cancel = new AbortController();
      await assert.rejects(replicate({ signal: cancel.signal, onPoll: () => cancel.abort() }), { name: 'AbortError' });
      const execution = source.executions.at(-1)!;
      assert.equal((await harbor.getExecution(execution.id)).status, 'Stopped');
    });
  });

  test('an image missing on the source fails before any execution starts', async () => {
    const before = source.executions.length;
    await assert.rejects(replicate({ tag: 'missing' }), failure('ImageNotFound', /team\/app:missing does not exist on harbor-a/));
    assert.equal(source.executions.length, before);
  });
});

describe("held to Harbor's API description (swagger-v2.15.2.yaml)", () => {
  test('every request berth sent to the Harbors above and every answer they gave are as Harbor describes them', () => {
    const exchanges = [...source.exchanges, ...harborTarget.exchanges];
    assert.deepEqual(exchanges.flatMap(harborSpecProblems), []);
    const seen = new Set(exchanges.map((e) => /\((\w+)\)$/.exec(harborOperation(e) ?? '')?.[1]));
    const berthUses = [
      'getHealth',
      'updateConfigurations',
      'headProject',
      'createProject',
      'listRegistries',
      'createRegistry',
      'updateRegistry',
      'listReplicationPolicies',
      'createReplicationPolicy',
      'updateReplicationPolicy',
      'startReplication',
      'getReplicationExecution',
      'stopReplication',
      'listReplicationTasks',
      'getReplicationLog',
    ];
    assert.deepEqual(
      berthUses.filter((op) => !seen.has(op)),
      [],
      'every operation berth uses was exercised',
    );
  });

  test('the check finds what Harbor would not take or send', () => {
    const exchange = (e: Partial<HarborExchange>): HarborExchange => ({ method: 'GET', url: '/api/v2.0/health', requestHeaders: {}, requestBody: '', status: 200, responseHeaders: {}, responseBody: '', ...e });
    const json = { 'content-type': 'application/json' };
    const cases: [HarborExchange, RegExp][] = [
      // berth's former log request: Harbor then answers a JSON string
      [
        exchange({ url: '/api/v2.0/replication/executions/3/tasks/4/log', requestHeaders: { accept: 'application/json' }, responseHeaders: { 'content-type': 'text/plain' }, responseBody: 'log' }),
        /asks for application\/json; the operation produces text\/plain/,
      ],
      [
        exchange({ method: 'POST', url: '/api/v2.0/registries', requestHeaders: json, requestBody: '{"name":"x","url":"http://r","credential_type":"basic"}', status: 201, responseHeaders: { location: '/api/v2.0/registries/2' } }),
        /request body .*must NOT have additional properties "credential_type"/,
      ],
      [exchange({ method: 'POST', url: '/api/v2.0/replication/executions', requestHeaders: json, requestBody: '{"policy_id":1}', status: 201 }), /without a Location header/],
      [exchange({ responseHeaders: json, responseBody: '{"status":"healthy","components":[{"name":"core","status":"healthy","uptime":3}]}' }), /must NOT have additional properties "uptime"/],
      [exchange({ method: 'PUT', url: '/api/v2.0/replication/executions/3', status: 204 }), /answers 204, which the operation does not declare/],
      [exchange({ method: 'HEAD', url: '/api/v2.0/projects', status: 200 }), /query parameter project_name is required/],
      [exchange({ url: '/api/v2.0/replication/policies?page_size=500', responseHeaders: json, responseBody: '[]' }), /page_size=500 is not integer up to 100/],
      [exchange({ method: 'DELETE', url: '/api/v2.0/health' }), /no such operation/],
      [
        exchange({ method: 'PUT', url: '/api/v2.0/configurations', requestHeaders: json, requestBody: '{}', status: 409, responseHeaders: json, responseBody: '{"message":"x"}' }),
        /answer 409 .*must NOT have additional properties "message"/,
      ],
    ];
    for (const [ex, expected] of cases) assert.match(harborSpecProblems(ex).join('\n'), expected, `${ex.method} ${ex.url}`);
  });
});
