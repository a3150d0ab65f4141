import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { reconcileSyncSchedules } from '../api/sync-schedules.ts';
import { describeSyncSchedule, scheduleId } from '../schedules/sync-rules.ts';
import type { BerthConfig } from '../config/load.ts';
import type { PairReport } from '../contracts/sync.ts';
import { startWorkers } from '../workers/run.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { recordHistory } from '../testbed/histories.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

// A source IDC, an IDC below it and a sub-IDC below that; a rule over the subtree that keeps apps/** (but not
// apps/tmp-*) in sync, release tags only (not *-rc*), deleting what the source no longer has.
let temporal: TestTemporal;
let config: BerthConfig;
let api: TestApi;
const reg: Record<string, TestRegistry> = {};
const images: Record<string, BuiltImage> = {};
const cleanups: (() => Promise<unknown>)[] = [];
const rule = `drift-${Date.now()}`;

async function push(name: string, repository: string, tag: string) {
  images[`${repository}:${tag}`] = await buildOciLayout(tempDir('layout'), tag, [{ os: 'linux', architecture: 'amd64', layers: [{ size: 32 << 10 }] }]);
  await pushWithSkopeo(images[`${repository}:${tag}`], reg[name], repository);
}

async function digestOn(name: string, image: string): Promise<string | null> {
  const client = registryClient(reg[name]);
  try {
    const [repository, tag] = image.split(':');
    return await client.headManifest(repository, tag);
  } finally {
    await client.close();
  }
}

/** Polls until every image has the source's digest on the registry (or, for null, is absent). */
async function until(name: string, expected: Record<string, string | null>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let seen: Record<string, string | null> = {};
  while (Date.now() < deadline) {
    seen = Object.fromEntries(await Promise.all(Object.keys(expected).map(async (i) => [i, await digestOn(name, i)])));
    if (Object.keys(expected).every((i) => seen[i] === expected[i])) return;
    await sleep(500);
  }
  assert.deepEqual(seen, expected, `${name} did not converge`);
}

before(async () => {
  temporal = await connectTestTemporal();
  for (const name of ['src', 'mid', 'leaf']) {
    reg[name] = await startedRegistry(name);
    cleanups.push(reg[name].stop);
  }
  await push('src', 'apps/web', '1.0');
  await push('src', 'apps/web', '1.1');
  await push('src', 'apps/web', '2.0-rc1');
  await push('src', 'apps/api', '1.0');
  await push('src', 'apps/tmp-x', '1.0');
  await push('src', 'other/db', '1.0');
  ({ config } = testConfig(
    'sync',
    temporal.address,
    [
      { registry: reg.src, idc: 'idc-src' },
      { registry: reg.mid, idc: 'idc-mid', parent: 'idc-src' },
      { registry: reg.leaf, idc: 'idc-leaf', parent: 'idc-mid' },
    ],
    {},
    {
      // Pages of 2 make the catalog and tag lists follow Link headers; batches of 1 make a child workflow each.
      sync: { pageSize: 2, repositoriesPerBatch: 1 },
      syncRules: [
        {
          name: rule,
          source: 'idc-src',
          repositories: { include: ['apps/**'], exclude: ['apps/tmp-*'] },
          tags: { exclude: ['*-rc*'] },
          schedule: { every: '2s' },
          deleteExtra: true,
        },
      ],
    },
  ));
  const workers = await startWorkers(config);
  cleanups.push(() => workers.shutdown());
  api = await testApi(config, temporal.client);
  cleanups.push(() => api.close());
});

after(async () => {
  for (const name of [rule, `${rule}-api`])
    await temporal.client.schedule
      .getHandle(scheduleId(name))
      .delete()
      .catch(() => undefined);
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

describe('scheduled sync', () => {
  test('the schedule keeps the subtree in sync and repairs drift made by hand on its next run', async () => {
    assert.deepEqual(await reconcileSyncSchedules(temporal.client, config), { created: [rule], updated: [], deleted: [], failed: [] });
    const wanted = { 'apps/web:1.0': images['apps/web:1.0'].digest, 'apps/web:1.1': images['apps/web:1.1'].digest, 'apps/api:1.0': images['apps/api:1.0'].digest };
    const unwanted = { 'apps/web:2.0-rc1': null, 'apps/tmp-x:1.0': null, 'other/db:1.0': null };
    await until('mid', { ...wanted, ...unwanted });
    await until('leaf', { ...wanted, ...unwanted });

    // Drift by hand: a tag deleted on mid, a new tag on the source, and on leaf an extra tag of its own plus an
    // alias of a synced digest (which deletion must spare: deleting it would delete apps/api:1.0 too).
    const mid = registryClient(reg.mid);
    await mid.deleteManifest('apps/web', images['apps/web:1.1'].digest);
    await mid.close();
    await push('src', 'apps/web', '1.2');
    await push('leaf', 'apps/api', 'local-only');
    const alias = images['apps/api:1.0'];
    const leaf = registryClient(reg.leaf);
    const manifest = await leaf.getManifest('apps/api', '1.0');
    await leaf.putManifest('apps/api', 'alias', manifest);
    await leaf.close();

    const repaired = { ...wanted, 'apps/web:1.2': images['apps/web:1.2'].digest };
    await until('mid', repaired);
    await until('leaf', { ...repaired, 'apps/api:local-only': null, 'apps/api:alias': alias.digest });
    assert.equal(await digestWithSkopeo(reg.leaf, 'apps/web:1.2'), images['apps/web:1.2'].digest, 'checked independently of berth');

    // The drift reports say what was wrong and what was fixed.
    let reports: { workflowId: string; report: { pairs: PairReport[] } | null }[] = [];
    for (let i = 0; i < 40; i++) {
      reports = (await api.inject({ url: `/v1/sync-rules/${rule}/reports` })).json().reports;
      const pairs = reports.flatMap((r) => r.report?.pairs ?? []);
      if (pairs.some((p) => p.deleted.includes('apps/api:local-only'))) break;
      await sleep(500);
    }
    const pairs = reports.flatMap((r) => r.report?.pairs ?? []);
    const fixedOnMid = pairs.find((p) => p.to === 'mid' && p.fixed.includes('apps/web:1.1'));
    assert.ok(fixedOnMid, `a run fixed apps/web:1.1 on mid: ${JSON.stringify(pairs)}`);
    assert.ok(fixedOnMid.missing.includes('apps/web:1.2') || pairs.some((p) => p.to === 'mid' && p.fixed.includes('apps/web:1.2')));
    const leafReport = pairs.find((p) => p.to === 'leaf' && p.deleted.includes('apps/api:local-only'));
    assert.ok(leafReport, 'a run deleted the extra tag on leaf');
    const repairRun = reports.find((r) => r.report?.pairs.some((p) => p.deleted.includes('apps/api:local-only')))!.workflowId;
    await recordHistory(temporal.client, repairRun, 'sync-run');
    await recordHistory(temporal.client, `${repairRun}/mid->leaf/0`, 'sync-batch');
    assert.equal(leafReport.from, 'mid', 'leaf syncs from its parent IDC');
    assert.ok(leafReport.extra.includes('apps/api:alias') && !leafReport.deleted.includes('apps/api:alias'), 'the alias was reported, not deleted');
    await temporal.client.schedule.getHandle(scheduleId(rule)).pause('test done');
  });

  test('sync rules through the API: validation, create, run now, pause, refuse edits of berth.yaml rules, delete', async () => {
    const bad = await api.inject({ method: 'POST', url: '/v1/sync-rules', payload: { name: 'x', source: 'idc-src', targets: ['nowhere'], schedule: { every: 'soon' } } });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(
      bad.json().issues.map((i: { path: string }) => i.path),
      ['schedule.every'],
    );
    const unknown = await api.inject({ method: 'POST', url: '/v1/sync-rules', payload: { name: 'x', source: 'idc-src', targets: ['nowhere'], schedule: { every: '1h' } } });
    assert.deepEqual(unknown.json().issues, [{ path: 'targets[0]', message: 'unknown IDC or registry "nowhere"' }]);

    const name = `${rule}-api`;
    const created = await api.inject({ method: 'POST', url: '/v1/sync-rules', payload: { name, source: 'src', targets: ['leaf'], repositories: { include: ['other/*'] }, schedule: { cron: '0 3 * * *' } } });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().origin, 'api');
    assert.equal((await api.inject({ method: 'POST', url: '/v1/sync-rules', payload: { name, source: 'src', schedule: { every: '1h' } } })).statusCode, 409);

    const run = await api.inject({ method: 'POST', url: `/v1/sync-rules/${name}/run` });
    assert.equal(run.statusCode, 202);
    await until('leaf', { 'other/db:1.0': images['other/db:1.0'].digest });

    const paused = await api.inject({ method: 'POST', url: `/v1/sync-rules/${name}/pause`, payload: { note: 'maintenance' } });
    assert.deepEqual([paused.json().paused, paused.json().note], [true, 'maintenance']);
    const changed = await api.inject({ method: 'PUT', url: `/v1/sync-rules/${name}`, payload: { source: 'src', targets: ['mid'], schedule: { every: '6h' } } });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.deepEqual([changed.json().targets, changed.json().schedule, changed.json().paused], [['mid'], { every: '6h' }, true]);

    const conflict = await api.inject({ method: 'PUT', url: `/v1/sync-rules/${rule}`, payload: { source: 'src', schedule: { every: '1h' } } });
    assert.equal(conflict.statusCode, 409);
    assert.match(conflict.json().message, /defined in berth\.yaml/);
    assert.equal((await api.inject({ method: 'DELETE', url: `/v1/sync-rules/${rule}` })).statusCode, 409);

    assert.equal((await api.inject({ method: 'DELETE', url: `/v1/sync-rules/${name}` })).statusCode, 204);
    assert.equal((await api.inject({ url: `/v1/sync-rules/${name}` })).statusCode, 404);
  });

  test("two installations sharing a namespace keep their hands off each other's schedules", async () => {
    // Another berth on this Temporal namespace: its own main queue, its own rule.
    const neighbour: BerthConfig = { ...config, taskQueues: { ...config.taskQueues, main: `${config.taskQueues.main}-neighbour` }, syncRules: [{ ...config.syncRules[0], name: `${rule}-neighbour` }] };
    try {
      assert.deepEqual((await reconcileSyncSchedules(temporal.client, neighbour)).created, [`${rule}-neighbour`]);
      // This installation's start neither deletes nor rewrites it, and its API does not list it.
      const ours = await reconcileSyncSchedules(temporal.client, config);
      assert.deepEqual([ours.deleted, ours.updated.includes(`${rule}-neighbour`)], [[], false]);
      assert.ok(await describeSyncSchedule(temporal.client, `${rule}-neighbour`));
      const listed = (await api.inject({ url: '/v1/sync-rules' })).json().rules.map((r: { name: string }) => r.name);
      assert.ok(listed.includes(rule) && !listed.includes(`${rule}-neighbour`), listed.join(', '));
    } finally {
      await reconcileSyncSchedules(temporal.client, { ...neighbour, syncRules: [] });
    }
    assert.equal(await describeSyncSchedule(temporal.client, `${rule}-neighbour`), undefined);
  });
});
