import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { recordHistory } from '../../testbed/histories.ts';

/** Waits for a workflow's end (keeping its history as a replay fixture `fixture` when recording). */
export async function workflowOutcome(client: Client, workflowId: string, fixture?: string) {
  const ended = await client.workflow
    .getHandle(workflowId)
    .result()
    .then(
      (result) => ({ ok: true as const, result }),
      (err) => ({ ok: false as const, error: String(err.cause?.message ?? err.message) }),
    );
  if (fixture) await recordHistory(client, workflowId, fixture);
  return ended;
}

/** Polls `probe` until it returns something other than undefined, or fails saying what it waited for. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await sleep(everyMs);
  }
}
