import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { historyFromJSON, historyToJSON, type History } from '@temporalio/common/lib/proto-utils.js';

/**
 * Committed histories of past workflow runs, one folder per berth version that recorded them
 * (`test/histories/<package.json version>/`): every workflow change must keep replaying those of every landed version.
 */
export const historiesDir = fileURLToPath(new URL('../test/histories/', import.meta.url));
const { version } = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string };

/** With BERTH_RECORD_HISTORIES=1, keeps a finished workflow's history as a replay fixture named `name`. */
export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (!process.env.BERTH_RECORD_HISTORIES) return;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const dir = join(historiesDir, version);
  mkdirSync(dir, { recursive: true });
  // The workflow ID goes along: child workflow IDs derive from it, and replay compares them.
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ workflowId, ...JSON.parse(historyToJSON(history)) }, null, 2));
}

/** Every committed history of every version. */
export function committedHistories(): { workflowId: string; history: History }[] {
  return readdirSync(historiesDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const { workflowId, ...history } = JSON.parse(readFileSync(join(historiesDir, f), 'utf8'));
      // Fixtures recorded before the ID was kept are from workflows without children: any ID replays them.
      return { workflowId: workflowId ?? f.replace(/^.*\/|\.json$/g, ''), history: historyFromJSON(history) };
    });
}

type HistoryEvent = NonNullable<History['events']>[number];

/** The events of one activity type in a history: scheduled, and the started/failed events that belong to them. */
export function activityEvents(history: History, activityType: string) {
  const events = history.events ?? [];
  const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
  const ids = new Set(scheduled.map((e) => String(e.eventId)));
  const belonging = (attrs: (e: HistoryEvent) => { scheduledEventId?: unknown } | null | undefined) => events.filter((e) => attrs(e) && ids.has(String(attrs(e)!.scheduledEventId)));
  return {
    scheduled,
    started: belonging((e) => e.activityTaskStartedEventAttributes),
    failed: belonging((e) => e.activityTaskFailedEventAttributes),
  };
}

export interface WorkflowRun {
  workflowId: string;
  runId: string;
  history: History;
}

/**
 * A workflow's runs (through continue-as-new) and those of its children, recursively: the whole tree one
 * execution of a parent made.
 */
export async function* workflowTree(client: Client, workflowId: string, runId?: string): AsyncGenerator<WorkflowRun> {
  for (let run: string | undefined = runId ?? (await client.workflow.getHandle(workflowId).describe()).runId; run;) {
    const history = await client.workflow.getHandle(workflowId, run).fetchHistory();
    yield { workflowId, runId: run, history };
    for (const e of history.events ?? []) {
      const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      if (child?.workflowId && child.runId) yield* workflowTree(client, child.workflowId, child.runId);
    }
    const last = history.events?.at(-1);
    run = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
}

/** Bytes of the payloads an event carries (its input, result, heartbeat details or failure details). */
function payloadBytes(value: unknown): number {
  if (!value || typeof value !== 'object') return 0;
  if (value instanceof Uint8Array) return 0;
  let bytes = 0;
  for (const [key, v] of Object.entries(value)) {
    if (key === 'payloads' && Array.isArray(v)) {
      for (const p of v as { data?: Uint8Array | null; metadata?: Record<string, Uint8Array> | null }[]) {
        bytes += (p.data?.length ?? 0) + Object.entries(p.metadata ?? {}).reduce((n, [k, m]) => n + k.length + m.length, 0);
      }
    } else bytes += payloadBytes(v);
  }
  return bytes;
}

/** The longest history and the largest event payload of a workflow tree, as Temporal's limits count them. */
export async function historyBounds(client: Client, workflowId: string, runId?: string) {
  let runs = 0;
  let longest = { workflowId, runId: '', events: 0 };
  let largest = { workflowId, runId: '', eventType: '', bytes: 0 };
  for await (const run of workflowTree(client, workflowId, runId)) {
    runs++;
    const events = run.history.events ?? [];
    if (events.length > longest.events) longest = { workflowId: run.workflowId, runId: run.runId, events: events.length };
    for (const e of events) {
      const bytes = payloadBytes(e);
      if (bytes > largest.bytes) largest = { workflowId: run.workflowId, runId: run.runId, eventType: proto.temporal.api.enums.v1.EventType[e.eventType ?? 0], bytes };
    }
  }
  return { runs, longest, largestPayload: largest };
}
