// The production topology on this machine, every part its own process: the real Temporal server (v1.29.1) on
// PostgreSQL with SQL visibility, berth's inventory in the same PostgreSQL, the API, the main worker (from the
// prebuilt bundle) and one worker per IDC. A user's replication, distribution, provisioning and dry-run failover;
// then the Temporal server SIGKILLed in the middle of a ~300 MB copy, PostgreSQL restarted in the middle of a
// provisioning, and a rolling upgrade of the main worker to a build whose workflow code changed behind patched().
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { reservedTags } from '../activities/cloud/provider.ts';
import { startNginx } from '../embedded/nginx.ts';
import { dockerBuild, ensureNodeImage } from '../embedded/node-image.ts';
import { startPostgres, type PostgresServer } from '../embedded/postgres.ts';
import { freePort, type ManagedProcess } from '../embedded/processes.ts';
import { startTemporalServer, type TemporalServer } from '../embedded/temporal-server.ts';
import { berthProcesses, bundleWorkflows, identityOf, repoRoot, type BerthProcess } from '../testbed/berth-process.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { hostEngine, removeCluster, sshKeyPair, testClusterName, testDockerCluster } from '../testbed/hosts.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { recordSecret } from '../testbed/secrets.ts';

const run = promisify(execFile);
const blobConcurrency = 2;
const layerMiB = 48;
const cluster = testClusterName('prod');

let pg: PostgresServer;
let temporal: TemporalServer;
let client: Client;
let source: TestRegistry;
let target: TestRegistry;
/** idc-a as berth reaches it: a link of 16 MiB/s per blob stream, so that big copies last seconds. */
let sourceLink: RegistryProxy;
/** idc-b as berth reaches it: counts what the copier uploads. */
let targetLink: RegistryProxy;
let nginx: ManagedProcess;
const images: Record<string, BuiltImage> = {};
let procs: ReturnType<typeof berthProcesses>;
let api: BerthProcess & { token?: string };
let mainWorker: BerthProcess;
let apiUrl: string;
let token: string;
const secrets = { BERTH_TEST_SSH_KEY_PROD: sshKeyPair().privateKey, BERTH_TEST_PAYLOAD_KEY_PROD: randomBytes(32).toString('base64') };
recordSecret(secrets.BERTH_TEST_PAYLOAD_KEY_PROD);
const encryption = { currentKey: 'k1', keys: [{ id: 'k1', key: { env: 'BERTH_TEST_PAYLOAD_KEY_PROD' } }] };
/** Containers this file starts, and berth's image it builds (removed in `after`; the base image stays cached). */
const containers: string[] = [];
const imageTag = `berth:production-test-${process.pid}`;

before(async () => {
  const pgDir = tempDir('prod-postgres');
  pg = await startPostgres({ dir: pgDir, port: await freePort() });
  temporal = await startTemporalServer({ dir: tempDir('prod-temporal'), postgres: pg, port: await freePort() });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  await pg.createDatabase('berth');

  [source, target] = await Promise.all([startedRegistry('prod-a'), startedRegistry('prod-b')]);
  sourceLink = await startRegistryProxy(source.url, { downloadBytesPerSecond: 16 << 20 });
  targetLink = await startRegistryProxy(target.url);
  const layers = (n: number, size: number) => Array.from({ length: n }, () => ({ size }));
  const built = await Promise.all([
    buildOciLayout(tempDir('prod-small'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 256 << 10, gzip: true }] }]),
    buildOciLayout(tempDir('prod-tree'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 512 << 10, gzip: true }] }]),
    buildOciLayout(tempDir('prod-big'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: layers(6, layerMiB << 20) }]),
    buildOciLayout(tempDir('prod-upgrade'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: layers(1, 96 << 20) }]),
  ]);
  for (const [name, image] of ['small', 'tree', 'big', 'upgrade'].map((n, i) => [n, built[i]] as const)) {
    images[name] = image;
    await pushWithSkopeo(image, source, `prod/${name}`);
  }

  const nginxDir = tempDir('prod-nginx');
  const endpointPort = await freePort();
  const endpoint = { upstreamFile: join(nginxDir, 'hub.upstream.conf'), pidFile: join(nginxDir, 'nginx.pid') };
  const hostOf = (url: string) => new URL(url).host;
  nginx = await startNginx({
    dir: nginxDir,
    pidFile: endpoint.pidFile,
    endpoints: [
      {
        group: 'hub',
        listen: `127.0.0.1:${endpointPort}`,
        upstreamFile: endpoint.upstreamFile,
        sides: [
          { registry: 'prod-a', upstream: hostOf(source.url) },
          { registry: 'prod-b', upstream: hostOf(target.url) },
        ],
        url: `http://127.0.0.1:${endpointPort}`,
      },
    ],
  });

  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  const { file, env } = testConfig(
    'prod',
    temporal.address,
    [
      { registry: source, idc: 'idc-a', url: sourceLink.url },
      { registry: target, idc: 'idc-b', parent: 'idc-a', url: targetLink.url },
    ],
    { blobConcurrency, chunkSizeMiB: 16 },
    {
      api: { host: '127.0.0.1', port: apiPort },
      workers: { shutdownGraceSeconds: 2 },
      metrics: { host: '127.0.0.1' },
      inventory: { postgres: { host: pg.host, port: pg.port, database: 'berth', user: pg.user } },
      encryption,
      haGroups: [{ name: 'hub', primary: 'prod-a', secondary: 'prod-b', endpoint: { url: `http://127.0.0.1:${endpointPort}`, taskQueue: 'berth-prod-endpoint-hub', nginx: endpoint }, automaticFailover: false }],
      rateCard: { docker: { small: 0.02 } },
      // A step that takes a few seconds: the window in which PostgreSQL restarts.
      initProfiles: { settle: [{ hostname: {} }, { script: { name: 'settle', check: 'test -f /etc/berth/settled', run: 'sleep 6 && touch /etc/berth/settled' } }] },
      clusters: [await testDockerCluster(cluster, 'idc-b', 'BERTH_TEST_SSH_KEY_PROD', 'settle')],
    },
  );
  procs = berthProcesses(file, { ...env, ...secrets });
  const bundle = await bundleWorkflows(join(tempDir('prod-bundle-a'), 'workflow-bundle.js'));
  [api, mainWorker] = await Promise.all([
    procs.api(),
    procs.worker('main-a', ['--no-idc'], { BERTH_WORKFLOW_BUNDLE: bundle }),
    procs.worker('idc-a', ['--idc', 'idc-a', '--no-main']),
    procs.worker('idc-b', ['--idc', 'idc-b', '--no-main']),
    // The HA endpoint's worker: beside nginx, serving only the group's endpoint queue.
    procs.worker('endpoint', ['--endpoint', 'hub', '--no-main', '--no-idc']),
  ]);
  assert.ok(api.token, `the first start wrote the admin's token to the file its log names; see ${api.logFile}`);
  token = api.token;
});

after(async () => {
  await procs?.stopAll();
  for (const name of containers) await docker(['rm', '--force', name]).catch(() => undefined);
  await docker(['rmi', '--force', imageTag]).catch(() => undefined);
  await nginx?.stop();
  await removeCluster((await hostEngine()).docker, cluster).catch(() => undefined);
  await Promise.all([sourceLink?.close(), targetLink?.close(), source?.stop(), target?.stop()]);
  await client?.connection.close();
  await temporal?.stop();
  await pg?.stop();
});

/** The docker CLI on the engine the tests use: its output, stdout then stderr. */
async function docker(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { socketPath } = await hostEngine();
  const { stdout, stderr } = await run('docker', args, { env: { ...process.env, ...env, DOCKER_HOST: `unix://${socketPath}` } });
  return stdout + stderr;
}

async function call(method: string, path: string, body?: object, at = { url: apiUrl, token }): Promise<{ status: number; json: any }> {
  const res = await fetch(`${at.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${at.token}`, ...(body && { 'content-type': 'application/json' }) },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

/** Starts through the API and returns the workflow ID. */
async function start(path: string, body: object): Promise<string> {
  const res = await call('POST', path, body);
  assert.equal(res.status, 202, JSON.stringify(res.json));
  return res.json.workflowId ?? res.json.workflows[0].workflowId;
}

/** The workflow as the API reports it once closed; API calls that fail meanwhile (an outage) are retried. */
async function closed(workflowId: string, timeoutMs = 180_000, at = { url: apiUrl, token }): Promise<{ status: string; result?: any; failure?: any }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call('GET', `/v1/workflows/${encodeURIComponent(workflowId)}`, undefined, at).catch(() => undefined);
    if (res?.status === 200 && res.json.status !== 'RUNNING') return res.json;
    assert.ok(Date.now() < deadline, `${workflowId} still running after ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(200);
  }
}

const machinesNamed = async (name: string) => ((await call('GET', `/v1/machines?cluster=${cluster}`)).json.machines as { id: string; name: string; state: string }[]).filter((m) => m.name === name);
const containersNamed = async (name: string) => (await (await hostEngine()).docker.listContainers({ all: true, filters: { label: [`${reservedTags.cluster}=${cluster}`, `${reservedTags.name}=${name}`] } })).length;

describe('production topology: Temporal server and inventory on PostgreSQL, every part its own process', () => {
  test('a replication, a distribution, a provisioning and a dry-run failover, through the API', async () => {
    const replication = await start('/v1/replications', { image: 'prod/small:1.0', source: 'idc-a', targets: ['idc-b'] });
    const distribution = await start('/v1/distributions', { image: 'prod/tree:1.0' });
    const provisioning = await start('/v1/machines', { cluster, pool: 'web', name: 'web-1' });

    const replicated = await closed(replication);
    assert.equal(replicated.status, 'COMPLETED', JSON.stringify(replicated.failure));
    assert.equal(replicated.result['prod-b'].digest, images.small.digest);
    assert.equal(await digestWithSkopeo(target, 'prod/small:1.0'), images.small.digest);
    const distributed = await closed(distribution);
    assert.equal(distributed.status, 'COMPLETED', JSON.stringify(distributed.failure));
    assert.equal(await digestWithSkopeo(target, 'prod/tree:1.0'), images.tree.digest);
    const provisioned = await closed(provisioning);
    assert.equal(provisioned.status, 'COMPLETED', JSON.stringify(provisioned.failure));
    assert.deepEqual(
      (await machinesNamed('web-1')).map((m) => m.state),
      ['ready'],
    );

    const dry = await call('POST', '/v1/ha-groups/hub/failover', { reason: 'rehearsal', dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.json));
    const [hub] = (await call('GET', '/v1/ha-groups')).json.groups;
    assert.equal(hub.active, 'primary', 'a dry run changes nothing');

    // The API's workflow listing runs on the server's SQL visibility, filtered by berth's search attributes.
    const listed = await waitFor('the replication in visibility', async () => {
      const { json } = await call('GET', '/v1/workflows?kind=replication');
      return json.workflows.some((w: { workflowId: string }) => w.workflowId === replication) ? json : undefined;
    });
    assert.ok(listed.workflows.length >= 1);
  });

  test('the Temporal server SIGKILLed in the middle of a ~300 MB replication and started again: it completes, verified, nothing copied twice', async () => {
    const total = 6 * (layerMiB << 20);
    const uploadedBefore = targetLink.uploadedBytes;
    const workflowId = await start('/v1/replications', { image: 'prod/big:1.0', source: 'idc-a', targets: ['idc-b'] });
    await waitFor('a third of the image copied', async () => (targetLink.uploadedBytes - uploadedBefore > total / 3 ? true : undefined));
    for (const p of temporal.processes) p.child.kill('SIGKILL');
    await Promise.all(temporal.processes.map((p) => p.stop()));
    const killedAt = Date.now();
    await sleep(3000);
    await temporal.start();
    console.log(`Temporal server down for ${Date.now() - killedAt} ms, at ${((targetLink.uploadedBytes - uploadedBefore) / 2 ** 20).toFixed(0)} MiB of ${total / 2 ** 20}`);

    const done = await closed(workflowId);
    assert.equal(done.status, 'COMPLETED', JSON.stringify(done.failure));
    assert.equal(done.result['prod-b'].digest, images.big.digest);
    assert.equal(await digestWithSkopeo(target, 'prod/big:1.0'), images.big.digest);
    const uploaded = targetLink.uploadedBytes - uploadedBefore;
    console.log(`uploaded ${uploaded} bytes for an image of ${total} bytes of layers`);
    assert.ok(uploaded <= total + blobConcurrency * (layerMiB << 20) + (1 << 20), `uploaded ${uploaded} bytes: at most the image and one blob per concurrent upload again`);
  });

  test('PostgreSQL restarted in the middle of a provisioning: the machine ends ready, no orphan, no duplicate', async () => {
    const workflowId = await start('/v1/machines', { cluster, pool: 'web', name: 'web-2' });
    await waitFor('the machine initializing', async () => ((await machinesNamed('web-2'))[0]?.state === 'initializing' ? true : undefined));
    await pg.stop();
    await sleep(5000);
    await pg.start();

    const done = await closed(workflowId);
    assert.equal(done.status, 'COMPLETED', JSON.stringify(done.failure));
    assert.deepEqual(
      (await machinesNamed('web-2')).map((m) => m.state),
      ['ready'],
      'one machine web-2, ready',
    );
    assert.equal(await containersNamed('web-2'), 1, 'one container for web-2');
    assert.equal((await (await hostEngine()).docker.listContainers({ all: true, filters: { label: [`${reservedTags.cluster}=${cluster}`] } })).length, 2, 'web-1 and web-2, nothing else');
  });

  test('rolling upgrade: a replication running on build A completes on build B, whose workflow code changed behind patched()', async () => {
    // Build B: a copy of this tree whose replicateImage waits on a timer at its end, behind a patch.
    const treeB = tempDir('prod-build-b');
    cpSync(repoRoot, treeB, { recursive: true, filter: (src) => !/\/(node_modules|\.git|\.tools|\.berth|dist|bench\/results)$/.test(src) });
    symlinkSync(join(repoRoot, 'node_modules'), join(treeB, 'node_modules'));
    const file = join(treeB, 'workflows/replicate-image.ts');
    const code = readFileSync(file, 'utf8');
    assert.match(code, /^export async function replicateImage\(/m);
    writeFileSync(
      file,
      `import { patched as patchedB, sleep as sleepB } from '@temporalio/workflow';\n` +
        code.replace(/^export async function replicateImage\(/m, 'async function replicateImageA(') +
        `\nexport async function replicateImage(input: ReplicateImageInput): Promise<ReplicateImageResult> {\n` +
        `  const result = await replicateImageA(input);\n  if (patchedB('production-test-build-b')) await sleepB(10);\n  return result;\n}\n`,
    );
    const bundleB = await bundleWorkflows(join(tempDir('prod-bundle-b'), 'workflow-bundle.js'), treeB);

    const workflowId = await start('/v1/replications', { image: 'prod/upgrade:1.0', source: 'idc-a', targets: ['idc-b'] });
    const handle = client.workflow.getHandle(workflowId);
    // Raw: the payloads are encrypted, and this client has no key.
    const copying = async () => (await client.workflowService.describeWorkflowExecution({ namespace: temporal.namespace, execution: { workflowId } })).pendingActivities?.some((a) => a.activityType?.name === 'copyImageToRegistry');
    await waitFor('the copy running', async () => ((await copying()) ? true : undefined));
    mainWorker.child.kill('SIGTERM');
    await once(mainWorker.child, 'exit');
    const copyPendingAtSwitch = await copying();
    assert.ok(copyPendingAtSwitch, 'build A stopped while the copy still ran: what follows runs on build B');
    const workerB = await procs.worker('main-b', ['--no-idc'], { BERTH_WORKFLOW_BUNDLE: bundleB });

    const done = await closed(workflowId);
    assert.equal(done.status, 'COMPLETED', JSON.stringify(done.failure));
    assert.equal(await digestWithSkopeo(target, 'prod/upgrade:1.0'), images.upgrade.digest);
    const events = (await handle.fetchHistory()).events ?? [];
    assert.ok(!events.some((e) => e.workflowTaskFailedEventAttributes), 'no workflow task failed: no nondeterminism');
    const tasks = events.filter((e) => e.workflowTaskStartedEventAttributes).map((e) => e.workflowTaskStartedEventAttributes!.identity!);
    assert.ok(tasks[0].startsWith(identityOf(mainWorker)), 'the workflow started on build A');
    assert.ok(tasks.at(-1)!.startsWith(identityOf(workerB)), 'and ended on build B');
    assert.ok(
      events.some((e) => e.timerStartedEventAttributes),
      "build B's patched branch ran (its timer)",
    );
  });
  test("berth's image, built on a local base, runs the API and a worker as containers that replicate an image", async () => {
    const engine = await hostEngine();
    const base = await ensureNodeImage(engine, engine.image);
    const buildStarted = Date.now();
    await dockerBuild(engine, repoRoot, ['--build-arg', `NODE_IMAGE=${base}`, '--tag', imageTag], join(tempDir('prod-image'), 'build.log'));
    console.log(`berth's image built on ${base} in ${Date.now() - buildStarted} ms`);

    // The containers' own task queues and inventory: only they can run what this test starts.
    await pg.createDatabase('berth_image');
    const port = await freePort();
    const { file, env } = testConfig(
      'prod-image',
      temporal.address,
      [
        { registry: source, idc: 'idc-a' },
        { registry: target, idc: 'idc-b', parent: 'idc-a' },
      ],
      {},
      {
        api: { host: '127.0.0.1', port },
        inventory: { postgres: { host: pg.host, port: pg.port, database: 'berth_image', user: pg.user } },
        encryption,
      },
    );
    // The image's processes run as the unprivileged user berth.
    chmodSync(dirname(file), 0o755);
    chmodSync(file, 0o644);
    const secretEnv = { ...env, BERTH_TEST_PAYLOAD_KEY_PROD: secrets.BERTH_TEST_PAYLOAD_KEY_PROD };
    const container = async (role: string, ...args: string[]) => {
      const name = `berth-production-test-${role}-${process.pid}`;
      containers.push(name);
      // Secrets by name only (`--env NAME`): docker takes their values from its own environment, not the command line.
      const secretNames = Object.keys(secretEnv).flatMap((k) => ['--env', k]);
      await docker(['run', '--detach', '--name', name, '--network', 'host', '--volume', `${file}:/etc/berth/berth.yaml:ro`, ...secretNames, imageTag, role, ...args], secretEnv);
      return name;
    };
    const logsOf = (name: string) => docker(['logs', name]);
    const apiContainer = await container('api');
    const workerContainer = await container('worker');
    const apiLog = await waitFor('the API container', async () => ((await logsOf(apiContainer)).includes('berth api on') ? logsOf(apiContainer) : undefined), 90_000);
    await waitFor('the worker container', async () => ((await logsOf(workerContainer)).includes('berth worker polling') ? true : undefined), 90_000);
    // Not a terminal: the API wrote the first admin's token to a file (0600) of its user, named in its log.
    const tokenFile = apiLog.match(/its token is in (\S+) /)![1];
    const at = { url: `http://127.0.0.1:${port}`, token: (await docker(['exec', apiContainer, 'cat', tokenFile])).trim() };
    recordSecret(at.token);
    assert.match(await logsOf(workerContainer), /workflows from \/app\/dist\/workflow-bundle\.js/, 'the worker runs the bundle built into the image');

    const image = await buildOciLayout(tempDir('prod-image-app'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 1 << 20, gzip: true }] }]);
    await pushWithSkopeo(image, source, 'prod/from-image');
    const started = await call('POST', '/v1/replications', { image: 'prod/from-image:1.0', source: 'idc-a', targets: ['idc-b'] }, at);
    assert.equal(started.status, 202, JSON.stringify(started.json));
    const done = await closed(started.json.workflowId, 120_000, at);
    assert.equal(done.status, 'COMPLETED', JSON.stringify(done.failure));
    assert.equal(await digestWithSkopeo(target, 'prod/from-image:1.0'), image.digest);
  });
});
