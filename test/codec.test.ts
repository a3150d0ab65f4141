// Payload encryption: the codec itself (round trip, rotation, tampering), and the whole path: a replication run
// by workers and an API that encrypt, a history that shows only ciphertext to a client without the key, and the
// codec endpoint that decrypts it for a caller with a token (as the Temporal UI does).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { AesGcmCodec } from '../codec/aes-gcm-codec.ts';
import { dataConverter } from '../codec/data-converter.ts';
import type { BerthConfig } from '../config/load.ts';
import { startWorkers } from '../workers/run.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, pushWithSkopeo } from '../testbed/oci-layout.ts';
import { recordSecret } from '../testbed/secrets.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

const key = () => {
  const k = randomBytes(32);
  recordSecret(k.toString('base64'));
  return k;
};
const json = (value: unknown): Payload => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });

describe('AesGcmCodec', () => {
  test('round trip; a rotated codec still reads what the old key wrote; tampering and unknown keys fail', async () => {
    const k1 = key();
    const k2 = key();
    const old = new AesGcmCodec(new Map([['k1', k1]]), 'k1');
    const [sealed] = await old.encode([json({ image: 'lib/app:1.0' })]);
    assert.equal(Buffer.from(sealed.metadata!['encryption-key-id']).toString(), 'k1');
    assert.ok(!Buffer.from(sealed.data!).toString('latin1').includes('lib/app'), 'ciphertext only');

    const rotated = new AesGcmCodec(
      new Map([
        ['k1', k1],
        ['k2', k2],
      ]),
      'k2',
    );
    const [opened] = await rotated.decode([sealed]);
    assert.deepEqual(JSON.parse(Buffer.from(opened.data!).toString()), { image: 'lib/app:1.0' });
    const [resealed] = await rotated.encode([opened]);
    assert.equal(Buffer.from(resealed.metadata!['encryption-key-id']).toString(), 'k2');

    const tampered = { ...sealed, data: Buffer.from(sealed.data!).fill(0, 20, 21) };
    await assert.rejects(rotated.decode([tampered]), /unable to authenticate|auth/i);
    await assert.rejects(new AesGcmCodec(new Map([['k2', k2]]), 'k2').decode([sealed]), /key "k1", which is not configured/);
    assert.throws(() => new AesGcmCodec(new Map([['k1', Buffer.alloc(16)]]), 'k1'), /must be 32 bytes/);
  });
});

describe('encrypted payloads end to end', () => {
  let temporal: TestTemporal;
  let config: BerthConfig;
  let api: TestApi;
  const regs: TestRegistry[] = [];

  before(async () => {
    temporal = await connectTestTemporal();
    regs.push(await startedRegistry('enc-a'), await startedRegistry('enc-b'));
    const image = await buildOciLayout(tempDir('layout'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 16 << 10 }] }]);
    await pushWithSkopeo(image, regs[0], 'secret-project/app');
    process.env.BERTH_TEST_PAYLOAD_KEY = key().toString('base64');
    ({ config } = testConfig(
      'codec',
      temporal.address,
      [
        { registry: regs[0], idc: 'idc-a' },
        { registry: regs[1], idc: 'idc-b' },
      ],
      {},
      {
        encryption: { currentKey: 'k1', keys: [{ id: 'k1', key: { env: 'BERTH_TEST_PAYLOAD_KEY' } }] },
      },
    ));
  });

  after(async () => {
    for (const r of regs) await r.stop();
    await temporal?.close();
  });

  test('histories hold ciphertext; the API and the codec endpoint decrypt for a caller with a token', async () => {
    const workers = await startWorkers(config);
    // The API's own client encrypts: built like startApi's, with berth's data converter.
    const client = new Client({ connection: temporal.client.connection, dataConverter: dataConverter(config) });
    api = await testApi(config, client);
    try {
      const res = await api.inject({ method: 'POST', url: '/v1/replications', payload: { image: 'secret-project/app:1.0', source: 'idc-a', targets: ['idc-b'] } });
      assert.equal(res.statusCode, 202, res.body);
      const { workflowId, runId } = res.json();
      await client.workflow.getHandle(workflowId, runId).result();

      // A client without the key sees only ciphertext: every payload in the history is encrypted.
      const history = await temporal.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const payloads = (history.events ?? []).flatMap((e) => [
        ...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []),
        ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
        ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
        ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
      ]);
      assert.ok(payloads.length >= 4, `${payloads.length} payloads`);
      for (const p of payloads) {
        assert.equal(Buffer.from(p.metadata!.encoding).toString(), 'binary/encrypted');
        assert.ok(!Buffer.from(p.data!).toString('latin1').includes('secret-project'));
      }
      // The API, which has the key, shows the result in clear.
      const status = (await api.inject({ url: `/v1/workflows/${encodeURIComponent(workflowId)}` })).json();
      assert.equal(status.result['enc-b'].digest.startsWith('sha256:'), true);

      // The codec endpoint, as the Temporal UI calls it: base64 in, base64 out; a token required; CORS for the UI.
      const body = {
        payloads: payloads.slice(0, 1).map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(p.data!).toString('base64') })),
      };
      const decoded = await api.inject({ method: 'POST', url: '/codec/decode', payload: body });
      assert.equal(decoded.statusCode, 200, decoded.body);
      assert.match(Buffer.from(decoded.json().payloads[0].data, 'base64').toString(), /secret-project\/app:1\.0/);
      assert.equal((await api.inject({ method: 'POST', url: '/codec/decode', payload: body, headers: { authorization: '' } })).statusCode, 401);
      const preflight = await api.inject({ method: 'OPTIONS', url: '/codec/decode', headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST' } });
      assert.equal(preflight.statusCode, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'http://127.0.0.1:8233');
      assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
      // The browser's way: a session cookie from the token.
      const session = await api.inject({ method: 'POST', url: '/v1/session', payload: { token: api.adminToken }, headers: { authorization: '' } });
      const cookie = String(session.headers['set-cookie']).split(';')[0];
      assert.equal((await api.inject({ method: 'POST', url: '/codec/decode', payload: body, headers: { authorization: '', cookie } })).statusCode, 200);
    } finally {
      await api?.close();
      await workers.shutdown();
    }
  });
});
