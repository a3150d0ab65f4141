// Registry HA under faults, with real components: two docker-registries behind a real nginx, the primary behind a
// proxy that adds 20 ms to every request (a distant IDC) and holding 2,000 tags. The endpoint's activities run in
// a worker process of their own, the only one given the nginx files (issue 11: nginx need not share a host with
// the API). A failed nginx reload, a fast switch whatever the catalog, the guard's loss, a push during a failback,
// and the sync rules kept off a fenced primary.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseUpstreamBlock } from '../activities/endpoint/nginx/config.ts';
import { ensureRegistryGuards, guardId, keepRegistryGuards } from '../api/registry-guards.ts';
import { reconcileSyncSchedules } from '../api/sync-schedules.ts';
import { describeSyncSchedule, scheduleId } from '../schedules/sync-rules.ts';
import type { BerthConfig } from '../config/load.ts';
import { startNginx } from '../embedded/nginx.ts';
import { freePort, spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import type { SyncPlan } from '../contracts/sync.ts';
import { startWorkers } from '../workers/run.ts';
import { servedThrough, waitFor } from './harness/ha.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { activityEvents, recordHistory } from '../testbed/histories.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let api: TestApi;
let config: BerthConfig;
let configFile: string;
const reg: Record<string, TestRegistry> = {};
let distant: RegistryProxy;
let nginx: ManagedProcess;
const files = { upstreamFile: '', pidFile: '', pushLog: '' };
const cleanups: (() => Promise<unknown>)[] = [];
const group = `hubf-${Date.now() % 100_000}`;
const rule = `${group}-sync`;
const tags = 2000;
let endpoint: { url: string; username: string; password: string };
const images: Record<string, BuiltImage> = {};

const hostOf = (url: string) => new URL(url).host;
const root = fileURLToPath(new URL('..', import.meta.url));
let workerEnv: NodeJS.ProcessEnv;
const failover = (body: object) => api.inject({ method: 'POST', url: `/v1/ha-groups/${group}/failover`, payload: body });
const failback = (body: object) => api.inject({ method: 'POST', url: `/v1/ha-groups/${group}/failback`, payload: body });

async function groupState() {
  const res = await api.inject({ url: '/v1/ha-groups' });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().groups.find((g: { name: string }) => g.name === group);
}

const servedBy = () => servedThrough(endpoint.url);

async function image(name: string) {
  images[name] ??= await buildOciLayout(tempDir('layout'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 24 << 10 }] }]);
  return images[name];
}

/** A schedule's description follows its updates with a lag, long on a loaded machine (seen: over 30 s). */
const schedulesSettle = 90_000;

/** The pairs the rule's schedule would run now. */
async function scheduledPairs(): Promise<string[]> {
  const stored = await describeSyncSchedule(temporal.client, rule);
  return (stored!.description.action.args![0] as SyncPlan).pairs.map((p) => `${p.from.registry}->${p.to.registry}`);
}

/** One tiny image under `count` tags of one repository, written straight to the registry. */
async function seedTags(r: TestRegistry, repository: string, count: number, built: BuiltImage) {
  await pushWithSkopeo(built, r, repository);
  const client = registryClient(r);
  try {
    const manifest = await client.getManifest(repository, built.tag);
    const queue = Array.from({ length: count }, (_, i) => `t${i}`);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let tag = queue.shift(); tag; tag = queue.shift()) await client.putManifest(repository, tag, manifest);
      }),
    );
  } finally {
    await client.close();
  }
}

before(async () => {
  temporal = await connectTestTemporal();
  const password = randomBytes(12).toString('hex');
  for (const name of ['reg-a', 'reg-b']) {
    reg[name] = await startedRegistry(name, { password });
    cleanups.push(reg[name].stop);
  }
  distant = await startRegistryProxy(reg['reg-a'].url);
  cleanups.push(() => distant.close());
  // Both sides hold the same 2,000 tags; reg-a also one image reg-b lacks (the RPO).
  const bulk = await image('bulk');
  await seedTags(reg['reg-a'], 'bulk/app', tags, bulk);
  // reg-b gets a copy of reg-a's storage: cheaper than 2,000 more pushes on a loaded machine.
  await reg['reg-b'].stop();
  rmSync(join(reg['reg-b'].dataDir, 'storage'), { recursive: true, force: true });
  cpSync(join(reg['reg-a'].dataDir, 'storage'), join(reg['reg-b'].dataDir, 'storage'), { recursive: true });
  await reg['reg-b'].start();
  await pushWithSkopeo(await image('late'), reg['reg-a'], 'apps/late');
  distant.delayMs = 20;

  const dir = tempDir('nginx');
  const port = await freePort();
  Object.assign(files, { upstreamFile: join(dir, `${group}.upstream.conf`), pidFile: join(dir, 'nginx.pid'), pushLog: join(dir, `${group}.push.log`) });
  endpoint = { url: `http://127.0.0.1:${port}`, username: reg['reg-a'].username!, password };
  const sides = [
    { registry: 'reg-a', upstream: hostOf(distant.url) },
    { registry: 'reg-b', upstream: hostOf(reg['reg-b'].url) },
  ];
  nginx = await startNginx({ dir, pidFile: files.pidFile, endpoints: [{ group, listen: `127.0.0.1:${port}`, ...files, sides, url: endpoint.url }] });
  cleanups.push(() => nginx.stop());

  const entries = [
    { registry: reg['reg-a'], idc: 'idc-a', url: distant.url },
    { registry: reg['reg-b'], idc: 'idc-b', parent: 'idc-a' },
  ];
  const more = (nginxFiles: typeof files) => ({
    projects: [{ name: 'ops' }],
    haGroups: [
      {
        name: group,
        project: 'ops',
        primary: 'reg-a',
        secondary: 'reg-b',
        endpoint: { url: endpoint.url, taskQueue: `berth-endpoint-${group}`, nginx: nginxFiles },
        probe: { every: '2s', failures: 3 },
        automaticFailover: false,
      },
    ],
    syncRules: [{ name: rule, source: 'reg-a', targets: ['reg-b'], bidirectional: true, schedule: { every: '1h' } }],
  });
  const real = testConfig('hafault', temporal.address, entries, {}, more(files));
  ({ config, file: configFile } = real);
  // The endpoint's worker, a process of its own: the only one that knows where nginx's files are.
  workerEnv = { ...process.env, ...real.env, BERTH_CONFIG: configFile };
  const worker = spawnManaged('endpoint-worker', process.execPath, ['--import', 'tsx', join(root, 'workers/main.ts'), '--endpoint', group, '--no-main', '--no-idc'], join(dir, 'endpoint-worker.log'), workerEnv);
  cleanups.push(() => worker.stop());
  await waitUntil('the endpoint worker', async () => readFileSync(worker.logFile, 'utf8').includes('berth worker polling'), { timeoutMs: 60_000, process: worker });
  // Every other worker gets a config whose nginx files do not exist.
  const elsewhere = tempDir('not-nginx');
  const blind = testConfig('hafault', temporal.address, entries, {}, more({ upstreamFile: join(elsewhere, 'none.conf'), pidFile: join(elsewhere, 'none.pid'), pushLog: join(elsewhere, 'none.log') })).config;
  const workers = await startWorkers(blind, { endpoints: [] });
  api = await testApi(config, temporal.client);
  cleanups.push(
    () => workers.shutdown(),
    () => api.close(),
  );
  cleanups.push(
    () => temporal.client.workflow.getHandle(guardId(group)).terminate('test done'),
    () => temporal.client.schedule.getHandle(scheduleId(rule)).delete(),
  );
  await reconcileSyncSchedules(temporal.client, config);
  await ensureRegistryGuards(temporal.client, config);
  await waitFor('the guard to read the endpoint', async () => ((await groupState()).endpoint?.serving === 'reg-a' ? true : undefined));
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

test('a failed nginx reload fails the failover: traffic, the upstream file and the guard stay on the primary', async () => {
  // nginx's pid file names a process that is gone: the reload signal reaches nothing.
  const realPid = readFileSync(files.pidFile, 'utf8');
  const gone = spawn('true');
  await new Promise((resolve) => gone.once('exit', resolve));
  writeFileSync(files.pidFile, `${gone.pid}\n`);
  try {
    const res = await failover({ reason: 'drill with a broken reload' });
    assert.equal(res.statusCode, 502, res.body);
    assert.match(res.json().message, /cannot reload nginx/);
  } finally {
    writeFileSync(files.pidFile, realPid);
  }
  assert.equal(await servedBy(), hostOf(distant.url));
  assert.equal(parseUpstreamBlock(readFileSync(files.upstreamFile, 'utf8')).registry, 'reg-a', 'the upstream file is back');
  const state = await groupState();
  assert.deepEqual([state.active, state.events.length, state.operation], ['primary', 0, undefined]);
  await waitFor('the sync rules to be unfenced', async () => ((await scheduledPairs()).length === 2 ? true : undefined), schedulesSettle);
  // An operator's reload later, or an nginx restart, still serves the primary.
  process.kill(Number(realPid), 'SIGHUP');
  await sleep(1500);
  assert.equal(await servedBy(), hostOf(distant.url));
});

test('a manual failover of a primary with 2,000 tags behind a slow link switches within 15 s, then measures an exact RPO', async () => {
  const res = await failover({ reason: 'drill' });
  assert.equal(res.statusCode, 200, res.body);
  const event = res.json();
  assert.equal(await servedBy(), hostOf(reg['reg-b'].url));
  assert.equal((await groupState()).active, 'secondary');

  // The switch time, from the failover's own history: its start to the completion of switchEndpoint.
  const history = await temporal.client.workflow.getHandle(event.workflowId).fetchHistory();
  const switched = activityEvents(history, 'switchEndpoint');
  const completed = history.events!.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(switched.scheduled[0].eventId))!;
  const ms = (e: typeof completed) => Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6);
  const switchMs = ms(completed) - ms(history.events![0]);
  const scan = activityEvents(history, 'measureRpo');
  console.log(`failover of ${tags + 1} tags at 20 ms a request: switched after ${switchMs} ms; RPO ${JSON.stringify(event.rpo)}; done after ${event.finishedAt - event.startedAt} ms`);
  assert.ok(switchMs <= 15_000, `traffic switched ${switchMs} ms after the failover began`);
  assert.ok(Number(scan.scheduled[0].eventId) > Number(completed.eventId), 'the RPO is measured after the switch');
  assert.equal(event.switchedAt - event.startedAt <= 15_000, true);

  // Fenced, the primary takes no more writes: the RPO is exact.
  assert.deepEqual(event.rpo, { source: 'primary', missing: [{ image: 'apps/late:1.0', digest: images.late.digest }], total: 1, tagsScanned: tags + 2 });
  assert.match(event.syncFence, new RegExp(`sync rules kept off reg-a: ${rule}`));
  assert.equal(event.verifiedPull.error, undefined);

  // berth's own sync rule writes nothing to the fenced primary while the secondary serves.
  await waitFor('the sync rules to be fenced', async () => ((await scheduledPairs()).length === 0 ? true : undefined), schedulesSettle);
  await pushWithSkopeo(await image('fresh'), endpoint, 'apps/fresh');
  const run = await api.inject({ method: 'POST', url: `/v1/sync-rules/${rule}/run` });
  assert.equal(run.statusCode, 202, run.body);
  const latest = await waitFor('the sync run', async () => {
    const [newest] = (await api.inject({ url: `/v1/sync-rules/${rule}/reports` })).json().reports;
    return newest?.status === 'COMPLETED' ? newest : undefined;
  });
  assert.deepEqual(latest.report.pairs, [], 'the run had no pair to sync');
  const direct = registryClient(reg['reg-a']);
  try {
    assert.equal(await direct.headManifest('apps/fresh', '1.0'), null, 'nothing was written to the fenced primary');
  } finally {
    await direct.close();
  }
  await recordHistory(temporal.client, event.workflowId, 'failover-switch-before-rpo');
});

test('the guard survives its own loss: restarted, it reads the secondary from the endpoint and fences the sync rules again; only platform admins cancel it', async () => {
  const opsAdmin = await api.userWith(`ops-admin-${group}`, { ops: 'admin' });
  const refused = await api.inject({ method: 'DELETE', url: `/v1/workflows/${encodeURIComponent(guardId(group))}`, headers: { authorization: `Bearer ${opsAdmin}` } });
  assert.equal(refused.statusCode, 403, refused.body);
  assert.match(refused.json().message, /only platform admins/);

  await temporal.client.workflow.getHandle(guardId(group)).terminate('lost in a test');
  const lost = await groupState();
  assert.deepEqual([lost.guardRunning, lost.watched, lost.active], [false, false, null]);

  // berth's API restarts: it rewrites the sync schedules from berth.yaml and starts the guard again.
  await api.close();
  api = await testApi(config, temporal.client);
  await reconcileSyncSchedules(temporal.client, config);
  await ensureRegistryGuards(temporal.client, config);
  const back = await waitFor('the guard to take the side the endpoint serves', async () => {
    const s = await groupState();
    return s.guardRunning && s.endpoint?.serving === 'reg-b' && s.syncFence?.fenced ? s : undefined;
  });
  assert.equal(back.active, 'secondary');
  await waitFor('the fence back on the rewritten schedule', async () => ((await scheduledPairs()).length === 0 ? true : undefined), schedulesSettle);

  // A guard that stops while the API runs is started again.
  await temporal.client.workflow.getHandle(guardId(group)).terminate('lost again');
  const keeper = keepRegistryGuards(temporal.client, config, 500);
  try {
    const again = await waitFor('the guard to be started again', async () => {
      const s = await groupState();
      return s.guardRunning && s.endpoint?.serving === 'reg-b' ? s : undefined;
    });
    assert.equal(again.active, 'secondary');
  } finally {
    await keeper.close();
  }
});

test("a push through the endpoint during a failback's resync is on the primary afterwards", async () => {
  const pending = failback({ reason: 'reg-a is fine' });
  // The resync has listed the catalog and is comparing bulk/app's 2,000 tags over the slow link.
  const resync = await waitFor('the resync to list its catalog', async () => {
    for await (const w of temporal.client.workflow.list({ query: `WorkflowType = 'syncRegistries' AND ExecutionStatus = 'Running'` })) {
      if (!w.workflowId.startsWith(`${guardId(group)}/failback-`) || !w.workflowId.endsWith('/resync')) continue;
      const progress = await temporal.client.workflow.getHandle(w.workflowId).query<Record<string, { batches: number }>>('progress');
      if (Object.values(progress).some((p) => p.batches > 0)) return w.workflowId;
    }
    return undefined;
  });
  await pushWithSkopeo(await image('during'), endpoint, 'apps/during');
  assert.equal((await temporal.client.workflow.getHandle(resync).describe()).status.name, 'RUNNING', 'the push landed while the resync ran');

  const res = await pending;
  assert.equal(res.statusCode, 200, res.body);
  const event = res.json();
  assert.equal(event.kind, 'failback');
  assert.match(event.reason, /the catch-up with writes refused 1\)/);
  assert.equal(await digestWithSkopeo(reg['reg-a'], 'apps/during:1.0'), images.during.digest, 'the push made during the resync is on the primary');
  assert.equal(await servedBy(), hostOf(distant.url));
  const state = await groupState();
  assert.deepEqual([state.active, state.endpoint.writesRefused], ['primary', false]);
  await waitFor('the sync rule to write to the primary again', async () => ((await scheduledPairs()).length === 2 ? true : undefined), schedulesSettle);
  assert.deepEqual(await scheduledPairs(), ['reg-a->reg-b', 'reg-b->reg-a']);
  // Writes go through again, to the primary.
  await pushWithSkopeo(await image('after'), endpoint, 'apps/after');
  assert.equal(await digestWithSkopeo(reg['reg-a'], 'apps/after:1.0'), images.after.digest);
  await recordHistory(temporal.client, event.workflowId, 'failback-fenced-catch-up');
  await recordHistory(temporal.client, guardId(group), 'registry-guard-follows-endpoint');
});

test('workers/main.ts serves an endpoint queue only when --endpoint names its group', async () => {
  const check = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'workers/main.ts'), ...args, '--check'], { env: workerEnv, cwd: root });
  assert.match((await check('--endpoint', group, '--no-main', '--no-idc')).stdout, new RegExp(`would poll berth-endpoint-${group} on`));
  assert.doesNotMatch((await check('--idc', 'idc-a', '--no-main')).stdout, /berth-endpoint-/, "an IDC worker never takes the endpoint's work");
  await assert.rejects(check('--endpoint', 'nope', '--no-main', '--no-idc'), (err: { code: number; stderr: string }) => err.code === 1 && /no endpoint.taskQueue for HA group nope/.test(err.stderr));
});
