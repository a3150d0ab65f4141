// The permission model over every route: who may call it (401 without a valid token, 403 without the role in the
// request's project), and that a refused call starts nothing and is audited; on each inventory database (users,
// tokens and the audit log live there). Registries are not needed: the workflows started here are only counted,
// never run.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { reconcileSyncSchedules } from '../api/sync-schedules.ts';
import { scheduleId } from '../schedules/sync-rules.ts';
import type { BerthConfig } from '../config/load.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { testConfig, testRegistry } from '../testbed/berth.ts';
import { freshInventory, inventoryKinds, stopTestPostgres } from './harness/inventory-db.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

const run = `${Date.now() % 100_000}`;
after(stopTestPostgres);

type Need = 'guest' | 'developer' | 'admin' | 'platform admin' | 'any token';
/** 401, 403, or 'allowed' (any other answer: done, or refused for a reason that is not access). */
function expected(who: string, need: Need): 401 | 403 | 'allowed' {
  if (who === 'no token' || who === 'bad token' || who === 'expired token' || who === 'revoked token') return 401;
  if (who === 'platform admin' || need === 'any token') return 'allowed';
  if (need === 'platform admin' || who === 'developer of other') return 403;
  const rank = ['guest', 'developer', 'admin'];
  return rank.indexOf(who.split(' ')[0]) >= rank.indexOf(need) ? 'allowed' : 403;
}

for (const kind of inventoryKinds)
  describe(`access on ${kind}`, () => {
    let temporal: TestTemporal;
    let config: BerthConfig;
    let api: TestApi;
    const rule = `access-${kind}-${run}`;
    const tokens: Record<string, string> = {};

    const started = async () => (await temporal.client.workflow.count(`TaskQueue = '${config.taskQueues.main}'`)).count;

    before(async () => {
      temporal = await connectTestTemporal();
      // Names of their own per database: workflow IDs derive from them, and both suites share one Temporal.
      const [a, b] = [await testRegistry(`a-${kind}`), await testRegistry(`b-${kind}`)];
      ({ config } = testConfig(
        `access-${kind}`,
        temporal.address,
        [
          { registry: a, idc: 'idc-a' },
          { registry: b, idc: 'idc-b', parent: 'idc-a' },
        ],
        {},
        {
          // Every route with every kind of bad token, within a minute: more than the default allowance (test/first-start.test.ts tests the limit).
          api: { unauthenticatedRequestsPerMinute: 10_000 },
          projects: [
            { name: 'platform', repositories: ['platform/**'] },
            { name: 'other', repositories: ['other/**'] },
          ],
          syncRules: [{ name: rule, source: 'idc-a', targets: ['idc-b'], schedule: { every: '1h' }, paused: true, project: 'platform' }],
          inventory: await freshInventory(kind),
          haGroups: [
            { name: `hub-${kind}-${run}`, primary: `a-${kind}`, secondary: `b-${kind}`, project: 'platform', endpoint: { url: 'http://127.0.0.1:1', nginx: { upstreamFile: '/nonexistent/u.conf', pidFile: '/nonexistent/n.pid' } } },
          ],
        },
      ));
      api = await testApi(config, temporal.client);
      await reconcileSyncSchedules(temporal.client, config);
      tokens['platform admin'] = api.adminToken;
      tokens['admin of platform'] = await api.userWith('alice', { platform: 'admin' });
      tokens['developer of platform'] = await api.userWith('dave', { platform: 'developer' });
      tokens['developer of other'] = await api.userWith('olga', { other: 'developer' });
      tokens['guest of platform'] = await api.userWith('gus', { platform: 'guest' });
      tokens['expired token'] = await api.userWith('ed', { platform: 'admin' }, { expiresAt: new Date(Date.now() - 1000) });
      tokens['revoked token'] = await api.userWith('rita', { platform: 'admin' });
      const [{ id }] = (await api.auth.tokens()).filter((t) => t.user === 'rita');
      await api.auth.revokeToken(id);
      await api.userWith('someone', {});
    });

    after(async () => {
      for (const name of [rule, `created-${kind}-${run}`])
        await temporal.client.schedule
          .getHandle(scheduleId(name))
          .delete()
          .catch(() => undefined);
      await api?.close();
      await temporal?.close();
    });

    const routes: { method: 'GET' | 'POST' | 'PUT'; url: string; body?: object; need: Need }[] = [
      { method: 'POST', url: '/v1/replications', body: { image: 'platform/web:1.0', source: 'idc-a', targets: ['idc-b'] }, need: 'developer' },
      { method: 'POST', url: '/v1/distributions', body: { image: 'platform/web:1.0' }, need: 'developer' },
      { method: 'GET', url: '/v1/workflows?project=platform', need: 'guest' },
      { method: 'GET', url: `/v1/sync-rules/${rule}`, need: 'guest' },
      { method: 'GET', url: `/v1/sync-rules/${rule}/reports`, need: 'guest' },
      { method: 'POST', url: `/v1/sync-rules/${rule}/pause`, body: { note: 'matrix' }, need: 'admin' },
      {
        method: 'POST',
        url: '/v1/sync-rules',
        body: { name: `created-${kind}-${run}`, source: 'idc-a', targets: ['idc-b'], repositories: { include: ['platform/**'] }, schedule: { every: '1h' }, paused: true, project: 'platform' },
        need: 'admin',
      },
      { method: 'POST', url: `/v1/ha-groups/hub-${kind}-${run}/failover`, body: { reason: 'matrix', dryRun: true }, need: 'admin' },
      { method: 'PUT', url: '/v1/projects/platform/members/someone', body: { role: 'guest' }, need: 'admin' },
      { method: 'GET', url: '/v1/audit', need: 'platform admin' },
      { method: 'GET', url: '/v1/users', need: 'platform admin' },
      { method: 'POST', url: '/v1/users', body: { name: `new-${run}` }, need: 'platform admin' },
      { method: 'POST', url: '/codec/decode', body: { payloads: [] }, need: 'any token' },
      { method: 'GET', url: '/v1/me', need: 'any token' },
      { method: 'GET', url: '/v1/ha-groups', need: 'any token' },
    ];

    const headersOf = (who: string) => (who === 'no token' ? { authorization: '' } : who === 'bad token' ? { authorization: 'Bearer berth_not-a-token' } : { authorization: `Bearer ${tokens[who]}` });

    test('every route x every kind of caller: 401, 403 or allowed; refused calls start nothing; every mutating call is audited', async () => {
      const callers = ['no token', 'bad token', 'expired token', 'revoked token', 'guest of platform', 'developer of other', 'developer of platform', 'admin of platform', 'platform admin'];
      const refusedFirst = [...callers].sort((x, y) => Number(expected(x, 'guest') === 'allowed') - Number(expected(y, 'guest') === 'allowed'));
      const mismatches: string[] = [];
      for (const who of refusedFirst) {
        for (const r of routes) {
          const want = expected(who, r.need);
          const res = await api.inject({ method: r.method, url: r.url, payload: r.body, headers: headersOf(who) });
          const got = res.statusCode === 401 || res.statusCode === 403 ? res.statusCode : 'allowed';
          if (got !== want) mismatches.push(`${who} ${r.method} ${r.url}: expected ${want}, got ${res.statusCode} ${res.body.slice(0, 200)}`);
          if (got === 401) assert.match(res.json().message, who === 'expired token' ? /expired/ : who === 'revoked token' ? /revoked/ : /token/);
        }
        if (expected(who, 'guest') !== 'allowed' && who !== 'developer of other') assert.equal(await started(), 0, `${who} started nothing`);
      }
      assert.deepEqual(mismatches, []);
      assert.equal(await started(), 2, 'the allowed callers started one replication and one distribution (repeats joined them)');

      // The audit log names who did what and how it ended, refused calls included.
      const audit = (await api.inject({ method: 'GET', url: '/v1/audit?limit=1000' })).json().entries as { principal: string; action: string; outcome: string; status: number }[];
      const has = (principal: string, action: string, outcome: string) => audit.some((e) => e.principal === principal && e.action === action && e.outcome === outcome);
      assert.ok(has('anonymous', 'POST /v1/replications', 'unauthenticated'));
      assert.ok(has('gus', 'POST /v1/replications', 'forbidden'));
      assert.ok(has('olga', 'POST /v1/distributions', 'forbidden'));
      assert.ok(has('dave', 'POST /v1/replications', 'ok'));
      assert.ok(has('alice', 'POST /v1/ha-groups/:name/failover', 'refused'), 'an allowed call that was refused for the state (no guard) is audited as refused');
      assert.ok(!audit.some((e) => e.action.startsWith('GET ')), 'reads are not audited');
      const mutatingCalls = callers.length * routes.filter((r) => r.method !== 'GET').length;
      assert.ok(audit.filter((e) => e.action !== 'GET /v1/audit').length >= mutatingCalls, `${audit.length} audit entries for ${mutatingCalls} mutating calls`);
    });

    test("a project admin's sync rule stays within the project's repositories", async () => {
      const alice = { authorization: `Bearer ${tokens['admin of platform']}` };
      const res = await api.inject({
        method: 'POST',
        url: '/v1/sync-rules',
        headers: alice,
        payload: { name: `wide-${run}`, source: 'idc-a', targets: ['idc-b'], schedule: { every: '1h' }, project: 'platform', deleteExtra: true },
      });
      assert.equal(res.statusCode, 403, res.body);
      assert.match(res.json().message, /repositories \*\* reach beyond project platform's \(platform\/\*\*\)/);
    });

    test('tokens: issued once, listed without the secret, revocable; only their owner (or a platform admin) revokes them', async () => {
      const dave = { authorization: `Bearer ${tokens['developer of platform']}` };
      const issued = await api.inject({ method: 'POST', url: '/v1/tokens', headers: dave, payload: { label: 'ci', expiresInDays: 1 } });
      assert.equal(issued.statusCode, 201, issued.body);
      const { id, token } = issued.json();
      assert.match(token, /^berth_/);
      const mine = { authorization: `Bearer ${token}` };
      assert.equal((await api.inject({ url: '/v1/me', headers: mine })).json().name, 'dave');
      const listed = (await api.inject({ url: '/v1/tokens', headers: dave })).body;
      assert.ok(listed.includes('"label":"ci"') && !listed.includes(token), 'listed without the token itself');

      const olga = { authorization: `Bearer ${tokens['developer of other']}` };
      assert.equal((await api.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: olga })).statusCode, 403);
      assert.equal((await api.inject({ method: 'POST', url: '/v1/tokens', headers: olga, payload: { label: 'x', user: 'dave' } })).statusCode, 403);
      assert.equal((await api.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: dave })).statusCode, 200);
      const after = await api.inject({ url: '/v1/me', headers: mine });
      assert.equal(after.statusCode, 401);
      assert.match(after.json().message, /revoked/);
    });

    test('cancel: a developer cancels what they started, not what others started; a project admin cancels anything in it', async () => {
      const as = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });
      const start = await api.inject({ method: 'POST', url: '/v1/replications', headers: as('admin of platform'), payload: { image: 'platform/cancel-me:1.0', source: 'idc-a', targets: ['idc-b'] } });
      assert.equal(start.statusCode, 202, start.body);
      const url = `/v1/workflows/${encodeURIComponent(start.json().workflowId)}`;
      assert.equal((await api.inject({ url, headers: as('guest of platform') })).json().startedBy, 'alice');
      const byDave = await api.inject({ method: 'DELETE', url, headers: as('developer of platform') });
      assert.equal(byDave.statusCode, 403);
      assert.match(byDave.json().message, /may cancel only workflows it started/);
      assert.equal((await api.inject({ method: 'DELETE', url, headers: as('admin of platform') })).statusCode, 202);
      const own = await api.inject({ method: 'POST', url: '/v1/replications', headers: as('developer of platform'), payload: { image: 'platform/mine:1.0', source: 'idc-a', targets: ['idc-b'] } });
      assert.equal((await api.inject({ method: 'DELETE', url: `/v1/workflows/${encodeURIComponent(own.json().workflowId)}`, headers: as('developer of platform') })).statusCode, 202);
    });
  });
