// berth on Harbor's REST API v2.0, against a Harbor-API-compatible fixture that fronts a real docker-registry and
// runs replications with skopeo; what arrives is checked with skopeo, independently of berth.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { basicAuthorization, type Credentials } from '../activities/registry/auth.ts';
import { RegistryError, type RegistryErrorType } from '../activities/registry/errors.ts';
import { HarborClient, type HarborExecution } from '../activities/registry/harbor/client.ts';
import { replicateWithHarbor, type HarborReplicationTarget, type ReplicateWithHarborInput } from '../activities/registry/harbor/replicate.ts';
import { startedRegistry, tempDir, type TestRegistry } from './harness/berth.ts';
import { startHarborFixture, type HarborFixture } from './harness/harbor-fixture.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from './harness/oci-layout.ts';

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

function replicate(opts: Partial<ReplicateWithHarborInput> = {}) {
  return replicateWithHarbor({ source: harbor, target: plainTarget, repository: 'team/app', tag: '1.0', deadlineMs: 60_000, ...opts });
}

/** Runs `fn` while the source Harbor misbehaves as `fault` says. */
async function whileSource(fault: 'stuck' | 'skipCopies', fn: () => Promise<void>): Promise<void> {
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
  [source, harborTarget, plain] = await Promise.all([
    startHarborFixture({ name: 'harbor-a', guests: { dev: 'dev-password' } }),
    startHarborFixture({ name: 'harbor-b' }),
    startedRegistry('plain'),
  ]);
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
  test('health names each component, and a registry that is down', async () => {
    const anonymous = new HarborClient({ name: 'harbor-b', baseUrl: harborTarget.url });
    try {
      assert.deepEqual(await anonymous.health(), { status: 'healthy', components: [{ name: 'core', status: 'healthy' }, { name: 'registry', status: 'healthy' }] });
      await harborTarget.registry.stop();
      const down = await anonymous.health();
      assert.equal(down.status, 'unhealthy');
      assert.match(down.components.find((c) => c.name === 'registry')?.error ?? '', /ECONNREFUSED/);
    } finally {
      await harborTarget.registry.start();
      await anonymous.close();
    }
  });

  test('ensure* find what exists by name, update it when it differs, and never duplicate it', async () => {
    const endpoint = { name: 'berth-idem', url: plain.url, type: 'docker-registry' as const, credential: { access_key: 'berth', access_secret: 's3cret' }, insecure: false };
    const id = await harbor.ensureRegistryEndpoint(endpoint);
    assert.equal(await harbor.ensureRegistryEndpoint(endpoint), id);
    assert.equal(await harbor.ensureRegistryEndpoint({ ...endpoint, url: 'http://127.0.0.1:1' }), id);
    const endpoints = await harborList(source, '/registries?q=name%3Dberth-idem');
    assert.deepEqual(
      endpoints.map((e) => [e.id, e.url, e.credential]),
      [[id, 'http://127.0.0.1:1', { type: 'basic', access_key: 'berth', access_secret: '*****' }]],
    );

    const policy = { name: 'berth-idem', destRegistryId: id, filters: { name: 'team/app', tag: '1.0' }, override: true };
    // Harbor looks policies up by substring: asking for berth-idem finds berth-idem-2 first.
    const longer = await harbor.ensureReplicationPolicy({ ...policy, name: 'berth-idem-2' });
    const policyId = await harbor.ensureReplicationPolicy(policy);
    assert.notEqual(policyId, longer);
    assert.equal(await harbor.ensureReplicationPolicy(policy), policyId);
    assert.equal(await harbor.ensureReplicationPolicy({ ...policy, filters: { name: 'team/app', tag: '2.0' } }), policyId);
    const policies = await harborList(source, '/replication/policies?name=berth-idem');
    assert.deepEqual(
      policies.map((p) => [p.name, p.dest_registry.id, p.trigger.type, p.enabled, p.filters]),
      [
        ['berth-idem-2', id, 'manual', true, [{ type: 'name', value: 'team/app' }, { type: 'tag', value: '1.0' }]],
        ['berth-idem', id, 'manual', true, [{ type: 'name', value: 'team/app' }, { type: 'tag', value: '2.0' }]],
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

  test("Harbor's error bodies give the error its code and message", async () => {
    await assert.rejects(
      harbor.ensureProject('Team Two'),
      failure('RegistryRejected', /ensure project Team Two on harbor-a: HTTP 400 BAD_REQUEST: project name "Team Two" is not in lower case/, { status: 400, code: 'BAD_REQUEST' }),
    );
    await assert.rejects(
      harbor.ensureReplicationPolicy({ name: 'berth-nowhere', destRegistryId: 999_999, filters: {}, override: true }),
      failure('RegistryRejected', /HTTP 400 BAD_REQUEST: registry 999999 not found/, { code: 'BAD_REQUEST' }),
    );
    await assert.rejects(harbor.startExecution(999_999), failure('RegistryRejected', /start replication of policy 999999 on harbor-a: HTTP 404 NOT_FOUND: policy 999999 not found/, { status: 404, code: 'NOT_FOUND' }));
  });
  test('read-only mode (the fence of a failover) refuses pushes until it is lifted', async () => {
    const pushAgain = () => pushWithSkopeo(image, source, 'team/fenced');
    await harbor.setReadOnly(true);
    try {
      assert.equal(source.readOnly, true);
      await assert.rejects(pushAgain, 'a push into a read-only Harbor is refused');
    } finally {
      await harbor.setReadOnly(false);
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

    const again = await replicate();
    assert.notEqual(again.executionId, result.executionId);
    assert.equal((await harborList(source, '/registries?q=name%3Dberth-plain')).length, 1);
    const policies = await harborList(source, '/replication/policies?name=berth-team-app-to-plain');
    assert.deepEqual(
      policies.map((p) => [p.dest_registry.url, p.override, p.filters]),
      [[plain.url, true, [{ type: 'name', value: 'team/app' }, { type: 'tag', value: '1.0' }]]],
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

  test('a failed execution fails with what each failed task copied and why; a corrected password reaches Harbor', async () => {
    const locked: HarborReplicationTarget = { ...plainTarget, name: 'plain-locked', credentials: { username: plain.username!, password: 'wrong' } };
    await assert.rejects(
      replicate({ target: locked }),
      failure(
        'RegistryRejected',
        /Harbor execution \d+ on harbor-a replicating team\/app:1.0 to plain-locked ended Failed: 1 task\(s\): 0 succeeded, 1 failed, 0 in progress, 0 stopped; task \d+ team\/app \[1 item\(s\) in total\] -> team\/app \[1 item\(s\) in total\]: .*unauthorized: authentication required/,
      ),
    );
    // Harbor never shows the stored secret: berth sends it again on every run.
    const fixed = await replicate({ target: { ...locked, credentials: plainTarget.credentials } });
    assert.deepEqual(fixed.tasks, { total: 1, succeed: 1, failed: 0 });
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
      failure('RegistryRejected', new RegExp(`^Harbor execution ${execution.id} on harbor-a was stuck: still InProgress after (\\d+\\.\\d) s \\(1 task\\(s\\): 0 succeeded, 0 failed, 1 in progress, 0 stopped\\); berth stopped it$`))(error);
      assert.equal((error as RegistryError).retryable, false);
      assert.ok(Number(/after ([\d.]+) s/.exec((error as Error).message)![1]) >= 2.5);
      assert.equal((await harbor.getExecution(execution.id)).status, 'Stopped');
      assert.deepEqual((await harbor.listTasks(execution.id)).map((t) => t.status), ['Stopped']);
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
