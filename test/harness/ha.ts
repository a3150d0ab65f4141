import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/** Polls `fn` until it returns something (errors count as nothing yet); fails the test after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(200);
  }
  return assert.fail(`timed out waiting for ${what}`);
}

/** Which registry address served a request through an HA endpoint (nginx's X-Berth-Upstream), if one did. */
export async function servedThrough(endpointUrl: string): Promise<string | undefined> {
  const res = await request(`${endpointUrl}/v2/`);
  await res.body.dump();
  return res.statusCode < 500 ? String(res.headers['x-berth-upstream']) : undefined;
}
