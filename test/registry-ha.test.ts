// Registry HA with real components: two docker-registries in two IDCs behind a real nginx endpoint, a guard that
// probes from three vantage points (IDC workers), failover on a quorum, and approved failback.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureRegistryGuards, guardId } from '../api/registry-guards.ts';
import { reconcileSyncSchedules } from '../api/sync-schedules.ts';
import { scheduleId } from '../schedules/sync-rules.ts';
import type { BerthConfig } from '../config/load.ts';
import { startNginx } from '../embedded/nginx.ts';
import { freePort } from '../embedded/processes.ts';
import { startWorkers } from '../workers/run.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { recordHistory } from '../testbed/histories.ts';
import { servedThrough, waitFor } from './harness/ha.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let api: TestApi;
let config: BerthConfig;
const reg: Record<string, TestRegistry> = {};
const images: Record<string, BuiltImage> = {};
const cleanups: (() => Promise<unknown>)[] = [];
const group = `hub-${Date.now() % 100_000}`;
const rule = `${group}-sync`;
let endpoint: { url: string; username: string; password: string };

/** Pushes a new image through the endpoint, as users do: it lands on whichever side is active. */
async function pushThroughEndpoint(name: string) {
  images[name] = await buildOciLayout(tempDir('layout'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 48 << 10 }] }]);
  await pushWithSkopeo(images[name], endpoint, `apps/${name}`);
}

async function groupState() {
  const res = await api.inject({ url: '/v1/ha-groups' });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().groups[0];
}

const servedBy = () => servedThrough(endpoint.url);

const hostOf = (r: TestRegistry) => new URL(r.url).host;
const failover = (body: object) => api.inject({ method: 'POST', url: `/v1/ha-groups/${group}/failover`, payload: body });

before(async () => {
  temporal = await connectTestTemporal();
  // Both sides share one login, as the two registries behind one endpoint must.
  const password = randomBytes(12).toString('hex');
  for (const name of ['reg-a', 'reg-b', 'reg-c']) {
    reg[name] = await startedRegistry(name, { password });
    cleanups.push(reg[name].stop);
  }
  const dir = tempDir('nginx');
  const port = await freePort();
  const nginx = { upstreamFile: join(dir, `${group}.upstream.conf`), pidFile: join(dir, 'nginx.pid'), pushLog: join(dir, `${group}.push.log`) };
  endpoint = { url: `http://127.0.0.1:${port}`, username: reg['reg-a'].username!, password };
  const proc = await startNginx({
    dir,
    pidFile: nginx.pidFile,
    endpoints: [{ group, listen: `127.0.0.1:${port}`, upstreamFile: nginx.upstreamFile, pushLog: nginx.pushLog, sides: ['reg-a', 'reg-b'].map((r) => ({ registry: r, upstream: hostOf(reg[r]) })), url: endpoint.url }],
  });
  cleanups.push(() => proc.stop());

  const entries = [
    { registry: reg['reg-a'], idc: 'idc-a' },
    { registry: reg['reg-b'], idc: 'idc-b', parent: 'idc-a' },
    { registry: reg['reg-c'], idc: 'idc-c', parent: 'idc-a' },
  ];
  const more = {
    haGroups: [{ name: group, primary: 'reg-a', secondary: 'reg-b', endpoint: { url: endpoint.url, nginx }, probe: { every: '2s', failures: 3 } }],
    syncRules: [{ name: rule, source: 'reg-a', targets: ['reg-b'], bidirectional: true, schedule: { every: '1h' } }],
  };
  ({ config } = testConfig('ha', temporal.address, entries, {}, more));
  // idc-c's worker cannot reach reg-a (a partition between the two IDCs): its config points reg-a at a dead port.
  const deadPort = await freePort();
  const partitioned = testConfig(
    'ha',
    temporal.address,
    entries.map((e) => (e.registry === reg['reg-a'] ? { ...e, url: `http://127.0.0.1:${deadPort}` } : e)),
    {},
    more,
  ).config;
  const workers = await startWorkers(config, { idcs: ['idc-a', 'idc-b'] });
  const cut = await startWorkers(partitioned, { main: false, idcs: ['idc-c'] });
  api = await testApi(config, temporal.client);
  cleanups.push(
    () => workers.shutdown(),
    () => cut.shutdown(),
    () => api.close(),
  );
  cleanups.push(
    () => temporal.client.workflow.getHandle(guardId(group)).terminate('test done'),
    () => temporal.client.schedule.getHandle(scheduleId(rule)).delete(),
  );
  await reconcileSyncSchedules(temporal.client, config);
  await ensureRegistryGuards(temporal.client, config);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

test('HA pair: dry run, no failover on a partitioned vantage point or a flapping primary, failover on a dead primary, approved failback, one of two concurrent failovers', async () => {
  // Images pushed through the endpoint reach reg-a; the bidirectional sync rule replicates them to reg-b.
  await pushThroughEndpoint('web');
  await pushThroughEndpoint('api');
  assert.equal((await api.inject({ method: 'POST', url: `/v1/sync-rules/${rule}/run` })).statusCode, 202);
  await waitFor('the sync to reach reg-b', async () => ((await digestWithSkopeo(reg['reg-b'], 'apps/api:1.0')) === images.api.digest ? true : undefined));
  await pushThroughEndpoint('late'); // on reg-a only: not replicated yet

  // A dry run plans and measures, and changes nothing.
  const dry = await failover({ dryRun: true, reason: 'rehearsal' });
  assert.equal(dry.statusCode, 200, dry.body);
  assert.equal(dry.json().rpo.source, 'primary');
  assert.deepEqual(dry.json().rpo.missing, [{ image: 'apps/late:1.0', digest: images.late.digest }]);
  assert.equal(await servedBy(), hostOf(reg['reg-a']));
  assert.equal((await groupState()).active, 'primary');

  // idc-c alone sees reg-a down on every round: one vote of three is no quorum.
  const partitioned = await waitFor('a probe round', async () => (await groupState()).lastProbes ?? undefined);
  assert.equal(partitioned.probes['idc-c']['reg-a'].up, false);
  assert.equal(partitioned.probes['idc-a']['reg-a'].up, true);
  assert.equal(partitioned.quorum, 2);

  // A flapping primary: down for one probe round, up, down for one more: the streak never reaches 3.
  for (let flap = 0; flap < 2; flap++) {
    await reg['reg-a'].stop();
    await waitFor('a round that sees reg-a down', async () => ((await groupState()).consecutiveDown >= 1 ? true : undefined));
    await reg['reg-a'].start();
    await waitFor('a round that sees reg-a up', async () => ((await groupState()).consecutiveDown === 0 ? true : undefined));
  }
  await sleep(4500); // two more rounds
  const steady = await groupState();
  assert.deepEqual([steady.active, steady.events.length], ['primary', 0], 'no failover on a flapping primary or a lone vantage point');

  // The primary dies: the endpoint serves from reg-b once the guard has seen 3 failed rounds.
  const killedAt = Date.now();
  await reg['reg-a'].stop();
  await waitFor('pulls through the endpoint from reg-b', async () => ((await servedBy()) === hostOf(reg['reg-b']) ? true : undefined));
  const rtoMs = Date.now() - killedAt;
  for (const name of ['web', 'api']) assert.equal(await digestWithSkopeo(endpoint, `apps/${name}:1.0`), images[name].digest, `${name} replicated before the failure is served`);
  const after = await waitFor('the failover event', async () => ((await groupState()).lastEvent?.kind === 'failover' ? groupState() : undefined));
  assert.equal(after.active, 'secondary');
  assert.equal(after.lastEvent.trigger, 'automatic');
  assert.equal(after.lastEvent.rpo.source, 'push-log', 'reg-a is gone: the endpoint push log tells what it had');
  assert.deepEqual(after.lastEvent.rpo.missing, [{ image: 'apps/late:1.0', digest: images.late.digest }]);
  console.log(`failover: RTO measured by the test ${rtoMs} ms (guard's own: ${after.lastEvent.rtoMs} ms); RPO ${JSON.stringify(after.lastEvent.rpo.missing)}`);

  // Failback waits for approval, and for the old primary to be back.
  const early = await api.inject({ method: 'POST', url: `/v1/ha-groups/${group}/failback`, payload: { reason: 'too early' } });
  assert.equal(early.statusCode, 502, early.body);
  assert.match(early.json().message, /reg-a is still down/);
  assert.equal(await servedBy(), hostOf(reg['reg-b']));
  await pushThroughEndpoint('during'); // lands on reg-b while it serves
  await reg['reg-a'].start();
  const back = await api.inject({ method: 'POST', url: `/v1/ha-groups/${group}/failback`, payload: { reason: 'reg-a repaired' } });
  assert.equal(back.statusCode, 200, back.body);
  assert.equal(back.json().kind, 'failback');
  assert.equal(await servedBy(), hostOf(reg['reg-a']));
  assert.equal(await digestWithSkopeo(reg['reg-a'], 'apps/during:1.0'), images.during.digest, 'the resync brought reg-a up to date');
  assert.equal((await groupState()).active, 'primary');

  // Two failovers at once: one wins, the other is refused and says why.
  const [one, two] = await Promise.all([failover({ reason: 'drill 1' }), failover({ reason: 'drill 2' })]);
  assert.deepEqual([one.statusCode, two.statusCode].sort(), [200, 409], `${one.body} ${two.body}`);
  assert.match((one.statusCode === 409 ? one : two).json().message, /already in progress|already serves from reg-b/);
  assert.equal(await servedBy(), hostOf(reg['reg-b']));

  const guard = guardId(group);
  await recordHistory(temporal.client, guard, 'registry-guard');
  await recordHistory(temporal.client, after.lastEvent.workflowId, 'failover-automatic');
  await recordHistory(temporal.client, back.json().workflowId, 'failback');
});

test('HA API: unknown group 404, bad body 400 naming the field', async () => {
  assert.equal((await api.inject({ method: 'POST', url: '/v1/ha-groups/nope/failover', payload: { reason: 'x' } })).statusCode, 404);
  const bad = await failover({ dryRun: 'yes' });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(
    bad
      .json()
      .issues.map((i: { path: string }) => i.path)
      .sort(),
    ['dryRun', 'reason'],
  );
});
