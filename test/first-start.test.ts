// The first start, as an operator meets it: on a fresh namespace of a server with a real server's settings (new
// search attributes take seconds to become usable), with a start that fails half way, with stdout on a terminal or
// in a log; then the API under load from callers without a token, and with its Temporal server gone. Its own dev
// server (not the run's shared one): this file stops it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { openInventory } from '../inventory/db.ts';
import { authStore, ensureFirstAdmin, firstAdminTokenFile } from '../api/auth/bootstrap.ts';
import { startApi } from '../api/start-api.ts';
import type { BerthConfig } from '../config/load.ts';
import { freePort, spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { tempDir, testConfig, testRegistry, type TestRegistry } from '../testbed/berth.ts';
import { recordSecret } from '../testbed/secrets.ts';

type Api = Awaited<ReturnType<typeof startApi>>;

let server: Awaited<ReturnType<typeof startTemporalDevServer>>;
let connection: Connection;
let registries: TestRegistry[];
const apis: Api[] = [];
const processes: ManagedProcess[] = [];

/** A namespace of its own, as an operator creates one for berth: none of berth's search attributes yet. */
async function freshNamespace(name: string): Promise<string> {
  const namespace = `${name}-${Date.now()}`;
  await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
  await waitUntil(`namespace ${namespace}`, async () => Boolean(await connection.workflowService.describeNamespace({ namespace })), { timeoutMs: 30_000 });
  return namespace;
}

/** A config on this file's server; a sync rule, so that a start creates a schedule that carries search attributes. */
async function configFor(id: string, namespace: string, more: Record<string, unknown> = {}): Promise<BerthConfig> {
  const { config } = testConfig(
    id,
    server.address,
    [
      { registry: registries[0], idc: 'idc-a' },
      { registry: registries[1], idc: 'idc-b', parent: 'idc-a' },
    ],
    {},
    {
      temporal: { address: server.address, namespace },
      api: { host: '127.0.0.1', port: await freePort() },
      syncRules: [{ name: `rule-${id}`, source: 'idc-a', schedule: { every: '1h' }, paused: true }],
      ...more,
    },
  );
  return config;
}

async function started(config: BerthConfig, announced: string[]): Promise<Api> {
  const api = await startApi(config, { logger: false, announce: (m) => announced.push(m) });
  apis.push(api);
  return api;
}

/** The token in the file a start wrote, checked to be readable by its owner only. */
function tokenFromFile(config: BerthConfig): string {
  const file = firstAdminTokenFile(config);
  assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is for its owner only`);
  const token = readFileSync(file, 'utf8').trim();
  recordSecret(token);
  return token;
}

const call = (api: Api, path: string, token: string, init: RequestInit = {}) => fetch(`${api.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers } });

before(async () => {
  const dir = tempDir('first-start');
  // A real server maps new search attributes after its caches refresh; the dev server forces a refresh on every
  // read unless told to behave as a real server does.
  server = await startTemporalDevServer({
    port: await freePort(),
    headless: true,
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    dynamicConfig: { 'system.forceSearchAttributesCacheRefreshOnRead': false },
  });
  connection = await Connection.connect({ address: server.address });
  // Never started: the API reaches no registry on its way up.
  registries = [await testRegistry('fs-a'), await testRegistry('fs-b')];
});

after(async () => {
  for (const p of processes) await p.stop();
  for (const api of apis) await api.close().catch(() => undefined);
  await connection?.close();
  await server?.stop();
});

describe('first start', () => {
  let api: Api;
  let config: BerthConfig;
  let token: string;

  test('on a fresh namespace: waits until the new search attributes are usable, then creates the admin last', async () => {
    config = await configFor('fresh', await freshNamespace('fresh'));
    const announced: string[] = [];
    const begun = Date.now();
    api = await started(config, announced);
    console.log(`first start on a fresh namespace: ${Date.now() - begun} ms`);
    assert.deepEqual(api.schedules.created, ['rule-fresh']);
    // The test's stdout is not a terminal: the token went to a file, and the message says where, not what.
    assert.equal(announced.length, 1);
    assert.ok(announced[0].includes(firstAdminTokenFile(config)), announced[0]);
    token = tokenFromFile(config);
    assert.ok(!announced[0].includes(token));
    assert.equal(token, api.firstAdminToken);
    const me = await call(api, '/v1/me', token);
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { name: string }).name, 'admin');
  });

  test('callers without a valid token are rate-limited per address: the audit log records only what the limit lets through', async () => {
    const perMinute = config.api.unauthenticatedRequestsPerMinute;
    const attempt = () => call(api, '/v1/replications', 'berth_guessed-token', { method: 'POST', body: '{}' });
    const statuses: number[] = [];
    for (let i = 0; i < perMinute + 5; i++) statuses.push((await attempt()).status);
    assert.deepEqual(statuses, [...Array(perMinute).fill(401), ...Array(5).fill(429)]);
    const limited = await attempt();
    assert.match(((await limited.json()) as { message: string }).message, new RegExp(`more than ${perMinute} requests without a valid token`));
    assert.ok(Number(limited.headers.get('retry-after')) > 0, 'says when to retry');

    // The admin, from the same address, is not limited; the audit log has one entry per request let through.
    const audit = await call(api, '/v1/audit?outcome=unauthenticated&action=POST%20%2Fv1%2Freplications', token);
    assert.equal(audit.status, 200);
    assert.equal(((await audit.json()) as { entries: unknown[] }).entries.length, perMinute);
    assert.equal((await call(api, '/healthz', '')).status, 200, 'probes are not limited');
  });

  test('a start that fails half way leaves no admin behind: the next start creates it and hands its token over', async () => {
    // A namespace where another application took BerthKind with another type: berth's schedules are refused.
    const clash = await freshNamespace('clash');
    await connection.operatorService.addSearchAttributes({ namespace: clash, searchAttributes: { BerthKind: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT } });
    const failing = await configFor('clash', clash);
    const announced: string[] = [];
    const failure = await started(failing, announced).then(
      () => assert.fail('a start on this namespace fails'),
      (e: Error) => e,
    );
    assert.deepEqual(announced, [], 'no token handed over');
    assert.ok(!existsSync(firstAdminTokenFile(failing)));
    const inventory = await openInventory(failing.inventory);
    try {
      assert.equal(await authStore(inventory).userCount(), 0, 'no admin whose token nobody has');
      // Handing the token over is the last thing that can fail: nothing is stored when it does.
      await assert.rejects(
        ensureFirstAdmin(authStore(inventory), () => {
          throw new Error('disk full');
        }),
        /disk full/,
      );
      assert.equal(await authStore(inventory).userCount(), 0);
    } finally {
      await inventory.destroy();
    }
    assert.match(failure.message, /clash with berth's: BerthKind is INDEXED_VALUE_TYPE_INT, berth needs INDEXED_VALUE_TYPE_KEYWORD/, 'and says why');

    // The operator fixes the namespace (here: a fresh one) and starts again on the same inventory.
    const fixed = { ...failing, temporal: { ...failing.temporal, namespace: await freshNamespace('fixed') } };
    const again = await started(fixed, announced);
    assert.equal(announced.length, 1);
    assert.equal((await call(again, '/v1/me', tokenFromFile(fixed))).status, 200);
  });

  test('api/main.ts prints the token only when stdout is a terminal; otherwise the log names the file', async () => {
    const main = fileURLToPath(new URL('../api/main.ts', import.meta.url));
    const run = async (id: string, terminal: boolean) => {
      const { config: c, file, env } = testConfig(id, server.address, [{ registry: registries[0], idc: 'idc-a' }], {}, { api: { host: '127.0.0.1', port: await freePort() } });
      const logFile = join(tempDir(id), 'api.log');
      const command = [process.execPath, '--import', 'tsx', main];
      // `script` runs the API on a pseudo-terminal, as an operator's shell does.
      const [cmd, args] = terminal ? ['script', ['-qfec', command.join(' '), '/dev/null']] : [command[0], command.slice(1)];
      const proc = spawnManaged(id, cmd, args, logFile, { ...process.env, ...env, BERTH_CONFIG: file });
      processes.push(proc);
      await waitUntil(`${id} api`, async () => readFileSync(logFile, 'utf8').includes('berth api on'), { timeoutMs: 60_000, process: proc });
      return { config: c, log: readFileSync(logFile, 'utf8') };
    };

    const onTerminal = await run('tty', true);
    const shown = onTerminal.log.match(/export BERTH_TOKEN=(berth_\S+)/)?.[1];
    assert.ok(shown, onTerminal.log);
    recordSecret(shown);
    assert.ok(!existsSync(firstAdminTokenFile(onTerminal.config)), 'no file when the terminal showed it');

    const inLog = await run('log', false);
    const written = tokenFromFile(inLog.config);
    assert.ok(!inLog.log.includes(written) && !/berth_[A-Za-z0-9_-]{20,}/.test(inLog.log), 'no token in the log');
    assert.ok(inLog.log.includes(`its token is in ${firstAdminTokenFile(inLog.config)}`), inLog.log);
  });

  test('with its Temporal server stopped, an API call answers 503 within 2 s', async () => {
    await server.stop();
    const begun = Date.now();
    const res = await call(api, '/v1/replications', token, { method: 'POST', body: JSON.stringify({ image: 'lib/app:1.0', source: 'idc-a', targets: ['idc-b'] }) });
    const tookMs = Date.now() - begun;
    assert.equal(res.status, 503, await res.clone().text());
    assert.match(((await res.json()) as { message: string }).message, new RegExp(`^Temporal at ${server.address.replace(/\./g, '\\.')} did not answer`));
    assert.ok(tookMs < 2000, `answered in ${tookMs} ms`);
    console.log(`Temporal stopped: 503 after ${tookMs} ms`);
  });
});
