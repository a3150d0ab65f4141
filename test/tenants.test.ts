// Tenants and the codec: every payload berth encrypts carries its project, bound to the ciphertext, and the codec
// endpoint (what the Temporal UI calls) decrypts a payload only for members of that project. Failures are encrypted
// too. The workers run as their own process, as in production: they learn each workflow's project from the
// payloads they decrypt, and label what they encrypt (activity results, child workflows) with it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { clientOptions } from '../codec/data-converter.ts';
import type { BerthConfig } from '../config/load.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, pushWithSkopeo } from '../testbed/oci-layout.ts';
import { recordSecret } from '../testbed/secrets.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let config: BerthConfig;
let client: Client;
let api: TestApi;
let workers: ManagedProcess;
const regs: TestRegistry[] = [];
const tokens: Record<string, string> = {};

type JsonPayload = { metadata: Record<string, string>; data: string };
const text = (p: JsonPayload, key: string) => Buffer.from(p.metadata[key] ?? '', 'base64').toString();
const plain = (p: JsonPayload) => Buffer.from(p.data, 'base64').toString();

/**
 * Every payload of a workflow's history as stored (no codec): inputs, results, memos, failures' attributes; not
 * search attributes, which are for the server to index and are never encrypted.
 */
async function storedPayloads(workflowId: string): Promise<JsonPayload[]> {
  const history = JSON.parse(historyToJSON(await temporal.client.workflow.getHandle(workflowId).fetchHistory()));
  const found: JsonPayload[] = [];
  const visit = (v: unknown) => {
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    // The SDK's patch markers (`patched()`) name a code change, not user data: Temporal writes them unencoded.
    if (o.markerName === 'core_patch') return;
    if (o.metadata && typeof o.data === 'string') found.push({ metadata: o.metadata as Record<string, string>, data: o.data });
    else for (const [k, value] of Object.entries(o)) if (k !== 'searchAttributes') visit(value);
  };
  visit(history);
  return found;
}

const decode = (token: string, payloads: JsonPayload[]) => api.inject({ method: 'POST', url: '/codec/decode', payload: { payloads }, headers: { authorization: `Bearer ${token}` } });

async function start(url: string, body: object): Promise<string> {
  const res = await api.inject({ method: 'POST', url, payload: body });
  assert.equal(res.statusCode, 202, res.body);
  return res.json().workflowId;
}

before(async () => {
  temporal = await connectTestTemporal();
  regs.push(await startedRegistry('tenant-a'), await startedRegistry('tenant-b'));
  const image = await buildOciLayout(tempDir('tenants'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 8 << 10 }] }]);
  await pushWithSkopeo(image, regs[0], 'team-a/app');
  await pushWithSkopeo(image, regs[0], 'team-b/app');
  const key = randomBytes(32).toString('base64');
  recordSecret(key);
  process.env.BERTH_TEST_TENANTS_KEY = key;
  const made = testConfig(
    'tenants',
    temporal.address,
    [
      { registry: regs[0], idc: 'idc-a' },
      { registry: regs[1], idc: 'idc-b', parent: 'idc-a' },
    ],
    {},
    {
      encryption: { currentKey: 'k1', keys: [{ id: 'k1', key: { env: 'BERTH_TEST_TENANTS_KEY' } }] },
      projects: [
        { name: 'team-a', repositories: ['team-a/**'] },
        { name: 'team-b', repositories: ['team-b/**'] },
      ],
    },
  );
  config = made.config;
  const logFile = join(tempDir('tenants-workers'), 'workers.log');
  workers = spawnManaged('workers', process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../workers/main.ts', import.meta.url))], logFile, {
    ...process.env,
    ...made.env,
    BERTH_CONFIG: made.file,
  });
  await waitUntil('workers', async () => readFileSync(logFile, 'utf8').includes('berth worker polling'), { timeoutMs: 120_000, process: workers });
  client = new Client({ connection: temporal.client.connection, ...clientOptions(config) });
  api = await testApi(config, client);
  tokens.guestA = await api.userWith('guest-a', { 'team-a': 'guest' });
  tokens.guestB = await api.userWith('guest-b', { 'team-b': 'guest' });
  tokens.nobody = await api.userWith('nobody', {});
});

after(async () => {
  await api?.close();
  await workers?.stop();
  for (const r of regs) await r.stop();
  await temporal?.close();
});

describe('payloads and their projects', () => {
  test('every payload carries its project; /codec/decode opens it only for members of that project', async () => {
    const distribution = await start('/v1/distributions', { image: 'team-a/app:1.0', from: 'idc-a' });
    const replication = await start('/v1/replications', { image: 'team-b/app:1.0', source: 'idc-a', targets: ['idc-b'] });
    await client.workflow.getHandle(distribution).result();
    await client.workflow.getHandle(replication).result();

    // The distribution's child workflow (on idc-b) was started by the worker process, not by the API.
    const child = `${distribution}/idc-a->idc-b`;
    const teamA = [...(await storedPayloads(distribution)), ...(await storedPayloads(child))];
    const teamB = await storedPayloads(replication);
    for (const [project, payloads] of [
      ['team-a', teamA],
      ['team-b', teamB],
    ] as const) {
      assert.ok(payloads.length >= 6, `${payloads.length} payloads of ${project}`);
      for (const p of payloads) {
        assert.equal(text(p, 'encoding'), 'binary/encrypted');
        assert.equal(text(p, 'berth-project'), project, 'labelled, activity results of the worker process included');
        assert.ok(!plain(p).includes(`${project}/app`), 'ciphertext only');
      }
    }

    const mixed = [...teamA, ...teamB];
    const asGuestA = await decode(tokens.guestA, mixed);
    assert.equal(asGuestA.statusCode, 200, asGuestA.body);
    const out: JsonPayload[] = asGuestA.json().payloads;
    assert.ok(
      out.slice(0, teamA.length).every((p) => text(p, 'encoding') !== 'binary/encrypted'),
      "team-a's payloads in clear",
    );
    assert.ok(out.slice(0, teamA.length).some((p) => plain(p).includes('team-a/app:1.0')));
    assert.deepEqual(out.slice(teamA.length), teamB, "team-b's payloads as they were sent, still encrypted");

    const asNobody: JsonPayload[] = (await decode(tokens.nobody, mixed)).json().payloads;
    assert.deepEqual(asNobody, mixed, 'a user of no project reads nothing');
    const asAdmin: JsonPayload[] = (await decode(api.adminToken, mixed)).json().payloads;
    assert.ok(
      asAdmin.every((p) => text(p, 'encoding') !== 'binary/encrypted'),
      'a platform admin reads everything',
    );

    // The label is bound to the ciphertext: a team-b payload relabelled as team-a's does not open.
    const relabelled = { ...teamB[0], metadata: { ...teamB[0].metadata, 'berth-project': Buffer.from('team-a').toString('base64') } };
    const forged = await decode(tokens.guestA, [relabelled]);
    assert.notEqual(forged.statusCode, 200);
    assert.ok(!forged.body.includes(Buffer.from('team-b/app').toString('base64')) && !forged.body.includes('team-b/app'));
  });

  test('failures are encrypted too: the history holds no failure text, the API and the codec show it to the project', async () => {
    const failed = await start('/v1/replications', { image: 'team-b/missing:1.0', source: 'idc-a', targets: ['idc-b'] });
    await assert.rejects(client.workflow.getHandle(failed).result(), (err: Error) => /team-b\/missing:1\.0 does not exist/.test(String((err.cause as Error | undefined)?.message)));

    // Every failure in the history, causes included (the workflow ID and search attributes name the image anyway).
    const failures: { message?: string; stackTrace?: string }[] = [];
    const visit = (v: unknown, key = '') => {
      if (typeof v !== 'object' || v === null) return;
      if (key === 'failure' || key === 'cause') failures.push(v);
      for (const [k, value] of Object.entries(v)) visit(value, k);
    };
    visit(JSON.parse(historyToJSON(await temporal.client.workflow.getHandle(failed).fetchHistory())));
    assert.ok(failures.length >= 2, `${failures.length} failures`);
    for (const f of failures) assert.deepEqual([f.message, f.stackTrace ?? ''], ['Encoded failure', ''], 'no message or stack trace in clear');

    const status = await api.inject({ url: `/v1/workflows/${encodeURIComponent(failed)}` });
    assert.match(status.json().failure.message, /team-b\/missing:1\.0 does not exist/);
    const payloads = await storedPayloads(failed);
    const forB: JsonPayload[] = (await decode(tokens.guestB, payloads)).json().payloads;
    assert.ok(
      forB.some((p) => /"message":".*team-b\/missing:1\.0 does not exist/.test(plain(p))),
      'the failure attributes open for team-b',
    );
    assert.deepEqual((await decode(tokens.guestA, payloads)).json().payloads, payloads, 'and stay closed for team-a');
  });
});
