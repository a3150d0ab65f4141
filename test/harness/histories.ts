import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { historyFromJSON, historyToJSON, type History } from '@temporalio/common/lib/proto-utils.js';

/**
 * Committed histories of past workflow runs, one folder per berth version that recorded them
 * (`test/histories/<package.json version>/`): every workflow change must keep replaying those of every landed version.
 */
export const historiesDir = fileURLToPath(new URL('../histories/', import.meta.url));
const { version } = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };

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
  const belonging = (attrs: (e: HistoryEvent) => { scheduledEventId?: unknown } | null | undefined) =>
    events.filter((e) => attrs(e) && ids.has(String(attrs(e)!.scheduledEventId)));
  return {
    scheduled,
    started: belonging((e) => e.activityTaskStartedEventAttributes),
    failed: belonging((e) => e.activityTaskFailedEventAttributes),
  };
}
