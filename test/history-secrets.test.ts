// Secrets travel by reference: no password, token or key that the suite used may appear in any workflow history.
// scripts/test.ts runs this file after every other file of the run has finished; it reads every history on the
// run's Temporal server and looks for every recorded secret, in the JSON and in every payload's decoded data,
// encrypted payloads included (failure messages and stack traces are among them): they are opened with the payload
// keys the suite recorded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { AesGcmCodec, isEncrypted } from '../codec/aes-gcm-codec.ts';
import { recordedSecrets } from '../testbed/secrets.ts';
import { connectTestTemporal } from './harness/temporal.ts';

/** What an encrypted payload holds, opened with whichever recorded key fits (AES-GCM says which one does). */
async function opened(payload: Payload, keys: Buffer[]): Promise<Payload | undefined> {
  const id = Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString();
  for (const key of keys) {
    try {
      return (await new AesGcmCodec(new Map([[id, key]]), id).decode([payload]))[0];
    } catch {
      // Another test's key.
    }
  }
  return undefined;
}

test('no secret the suite used appears in any workflow history', { timeout: 30 * 60_000 }, async (t) => {
  if (!process.env.BERTH_TEST_SECRETS_DIR) return t.skip('only meaningful in a whole `npm test` run, which records the secrets');
  const secrets = [...new Set(recordedSecrets())];
  assert.ok(secrets.length >= 10, `the suite recorded ${secrets.length} secrets`);
  const keys = secrets.map((s) => Buffer.from(s, 'base64')).filter((k) => k.length === 32);
  let decrypted = 0;
  const temporal = await connectTestTemporal();
  try {
    let histories = 0;
    const leaks: string[] = [];
    // The raw service: listing through the client would decode memos, and some are encrypted with a test's key.
    const service = temporal.client.workflowService;
    const runs: { workflowId: string; runId: string }[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await service.listWorkflowExecutions({ namespace: 'default', pageSize: 1000, nextPageToken });
      for (const e of page.executions ?? []) runs.push({ workflowId: e.execution!.workflowId!, runId: e.execution!.runId! });
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    for (const w of runs) {
      const json = historyToJSON(await temporal.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory());
      // Payload data is base64 in the JSON: search it decoded too, and opened where it is encrypted.
      const decoded = [...json.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('latin1'));
      for (const p of encryptedPayloads(JSON.parse(json))) {
        const plain = await opened(p, keys);
        if (!plain) continue;
        decoded.push(Buffer.from(plain.data ?? []).toString('latin1'));
        decrypted++;
      }
      const text = [json, ...decoded].join('\n');
      histories++;
      for (const secret of secrets) if (text.includes(secret)) leaks.push(`${w.workflowId}: ${secret.slice(0, 4)}…`);
    }
    assert.ok(histories >= 20, `scanned ${histories} histories`);
    assert.ok(decrypted > 0, 'encrypted payloads were opened and searched');
    assert.deepEqual(leaks, []);
    t.diagnostic(`scanned ${histories} histories (${decrypted} encrypted payloads opened) for ${secrets.length} secrets`);
  } finally {
    await temporal.close();
  }
});

/** The encrypted payloads of a history (as JSON), wherever they are: inputs, results, memos, failures. */
function encryptedPayloads(value: unknown, found: Payload[] = []): Payload[] {
  if (typeof value !== 'object' || value === null) return found;
  const o = value as { metadata?: Record<string, string>; data?: string };
  if (o.metadata && typeof o.data === 'string') {
    const payload = { metadata: Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(o.data, 'base64') };
    if (isEncrypted(payload)) found.push(payload);
  } else for (const v of Object.values(value)) encryptedPayloads(v, found);
  return found;
}
