import { ApplicationFailure, defineQuery, executeChild, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { pool } from './pool.ts';
import { describeFailure, type RegistryEndpoint } from './replicate-image.ts';

export interface SyncFilter {
  include: string[];
  exclude: string[];
}

export interface SyncPair {
  from: RegistryEndpoint;
  to: RegistryEndpoint;
  /** Pairs of a level run after every pair of the level before: a sub-IDC syncs from an IDC already synced. */
  level: number;
  /** Fix drift with the source Harbor's own replication (a rule in mode harbor, for pairs whose source is a Harbor). */
  viaHarbor?: boolean;
}

export interface SyncPlan {
  rule: string;
  pairs: SyncPair[];
  repositories: SyncFilter;
  tags: SyncFilter;
  /** mode harbor: how long one Harbor execution may run before berth stops it. */
  harborDeadlineMs: number;
  deleteExtra: boolean;
  requestsPerSecond?: number;
  bytesPerSecond?: number;
  maxAttempts: number;
  repositoriesPerBatch: number;
}

type Counted = 'missing' | 'different' | 'extra' | 'fixed' | 'deleted';

/** The drift report of one source -> target pair: what was wrong, what was fixed, what failed. */
export interface PairReport {
  from: string;
  to: string;
  repositories: number;
  counts: Record<Counted | 'inSync' | 'failed', number>;
  /** Images as `repository:tag`; each list keeps its first 100 entries, `counts` has the totals. */
  missing: string[];
  different: string[];
  extra: string[];
  fixed: string[];
  deleted: string[];
  failed: { image: string; error: string }[];
}

export interface SyncReport {
  rule: string;
  pairs: PairReport[];
}

export interface SyncRepositoriesInput {
  plan: SyncPlan;
  pair: SyncPair;
  repositories: string[];
}

export const syncProgressQuery = defineQuery<Record<string, { status: 'pending' | 'syncing' | 'done'; batchesDone: number; batches: number }>>('progress');

const listLimit = 100;
const counted: Counted[] = ['missing', 'different', 'extra', 'fixed', 'deleted'];

function emptyReport(pair: SyncPair): PairReport {
  const counts = { inSync: 0, failed: 0, missing: 0, different: 0, extra: 0, fixed: 0, deleted: 0 };
  return { from: pair.from.registry, to: pair.to.registry, repositories: 0, counts, missing: [], different: [], extra: [], fixed: [], deleted: [], failed: [] };
}

function note(report: PairReport, what: Counted, image: string) {
  report.counts[what]++;
  if (report[what].length < listLimit) report[what].push(image);
}

function fail(report: PairReport, image: string, err: unknown) {
  if (isCancellation(err)) throw err;
  report.counts.failed++;
  if (report.failed.length < listLimit) report.failed.push({ image, error: describeFailure(err) });
}

function merge(into: PairReport, part: PairReport) {
  into.repositories += part.repositories;
  for (const k of Object.keys(into.counts) as (keyof PairReport['counts'])[]) into.counts[k] += part.counts[k];
  for (const k of counted) into[k].push(...part[k].slice(0, listLimit - into[k].length));
  into.failed.push(...part.failed.slice(0, listLimit - into.failed.length));
}

const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;

/**
 * One run of a sync rule, started by its Temporal Schedule: for every source -> target pair, list the catalog
 * (filtered), compare tags and digests repository by repository, copy what is missing or different, delete what
 * is extra when the rule asks for it, and report the drift. Repositories go in batches of child workflows, so a
 * large catalog keeps every history small.
 */
export async function syncRegistries(plan: SyncPlan): Promise<SyncReport> {
  const { workflowId } = workflowInfo();
  const key = (p: SyncPair) => `${p.from.registry}->${p.to.registry}`;
  const progress: Record<string, { status: 'pending' | 'syncing' | 'done'; batchesDone: number; batches: number }> = {};
  for (const p of plan.pairs) progress[key(p)] = { status: 'pending', batchesDone: 0, batches: 0 };
  setHandler(syncProgressQuery, () => progress);

  const reports = new Map(plan.pairs.map((p) => [p, emptyReport(p)]));
  const syncPair = async (pair: SyncPair) => {
    const report = reports.get(pair)!;
    const state = progress[key(pair)];
    state.status = 'syncing';
    const { listRepositories } = proxyActivities<Activities>({
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout: '1 minute',
      retry: { ...retry, maximumAttempts: plan.maxAttempts },
      taskQueue: pair.from.taskQueue,
      summary: `list ${pair.from.registry}`,
    });
    let repositories: string[];
    try {
      repositories = await listRepositories({ registry: pair.from.registry, filter: plan.repositories, requestsPerSecond: plan.requestsPerSecond });
    } catch (err) {
      fail(report, `${pair.from.registry} catalog`, err);
      state.status = 'done';
      return;
    }
    const batches: string[][] = [];
    for (let i = 0; i < repositories.length; i += plan.repositoriesPerBatch) batches.push(repositories.slice(i, i + plan.repositoriesPerBatch));
    state.batches = batches.length;
    await pool(batches, 2, async (batch, i) => {
      try {
        merge(report, await executeChild(syncRepositories, {
          workflowId: `${workflowId}/${key(pair)}/${i}`,
          args: [{ plan, pair, repositories: batch }],
          staticSummary: `sync ${batch.length} repositories ${key(pair)}`,
        }));
      } catch (err) {
        fail(report, `${batch[0]} .. ${batch[batch.length - 1]}`, err);
      }
      state.batchesDone++;
    });
    state.status = 'done';
  };
  for (const level of [...new Set(plan.pairs.map((p) => p.level))].sort((a, b) => a - b)) {
    await Promise.all(plan.pairs.filter((p) => p.level === level).map(syncPair));
  }

  const report: SyncReport = { rule: plan.rule, pairs: [...reports.values()] };
  const failed = report.pairs.reduce((n, p) => n + p.counts.failed, 0);
  if (failed > 0) {
    throw ApplicationFailure.create({ type: 'SyncIncomplete', message: `sync rule ${plan.rule}: ${failed} images or listings failed`, nonRetryable: true, details: [report] });
  }
  return report;
}

/** One batch of repositories of one pair: compare, copy what differs, delete what is extra if asked. */
export async function syncRepositories({ plan, pair, repositories }: SyncRepositoriesInput): Promise<PairReport> {
  const report = emptyReport(pair);
  report.repositories = repositories.length;
  const { diffRepository, deleteManifest } = proxyActivities<Activities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '1 minute',
    retry: { ...retry, maximumAttempts: plan.maxAttempts },
    taskQueue: pair.to.taskQueue,
  });
  const { copyImageToRegistry } = proxyActivities<Activities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '20 seconds',
    retry: { ...retry, maximumAttempts: plan.maxAttempts },
    taskQueue: pair.to.taskQueue,
  });
  // mode harbor: Harbor's replication, driven from the main queue (a control activity on Harbor's API).
  const { replicateViaHarbor } = proxyActivities<Activities>({
    startToCloseTimeout: plan.harborDeadlineMs + 120_000,
    heartbeatTimeout: '30 seconds',
    retry: { ...retry, maximumAttempts: plan.maxAttempts },
  });
  const limits = { requestsPerSecond: plan.requestsPerSecond, bytesPerSecond: plan.bytesPerSecond };
  const fix = (image: string, digest: string) =>
    pair.viaHarbor
      ? replicateViaHarbor({ image, source: pair.from.registry, target: pair.to.registry, deadlineMs: plan.harborDeadlineMs })
      : // No progress signals: the batch's history stays small; its report says what was fixed.
        copyImageToRegistry({ image, digest, source: pair.from.registry, target: pair.to.registry, limits });
  await pool(repositories, 4, async (repository) => {
    let drift;
    try {
      drift = await diffRepository({ source: pair.from.registry, target: pair.to.registry, repository, tags: plan.tags, deleteExtra: plan.deleteExtra, requestsPerSecond: plan.requestsPerSecond });
    } catch (err) {
      fail(report, repository, err);
      return;
    }
    report.counts.inSync += drift.inSync;
    for (const m of drift.missing) note(report, 'missing', `${repository}:${m.tag}`);
    for (const d of drift.different) note(report, 'different', `${repository}:${d.tag}`);
    for (const e of drift.extra) note(report, 'extra', `${repository}:${e.tag}`);

    // Harbor's policy for a repository and target carries the tag in its filter: one tag at a time there.
    const unfixed = new Set<string>();
    await pool([...drift.missing, ...drift.different], pair.viaHarbor ? 1 : 2, async ({ tag, digest }) => {
      const image = `${repository}:${tag}`;
      try {
        await fix(image, digest);
        note(report, 'fixed', image);
      } catch (err) {
        unfixed.add(tag);
        fail(report, image, err);
      }
    });

    if (!plan.deleteExtra) return;
    // One delete per digest; a digest that a staying tag points to is left alone (and stays reported as extra).
    // A tag whose fix failed still points to its old digest: deleting that digest would delete the tag too.
    const stillHeld = new Set(drift.different.filter((d) => unfixed.has(d.tag)).map((d) => d.targetDigest));
    const doomed = new Map<string, string[]>();
    for (const e of drift.extra.filter((x) => !x.sharedWith && !stillHeld.has(x.digest))) doomed.set(e.digest, [...(doomed.get(e.digest) ?? []), e.tag]);
    for (const [digest, tags] of doomed) {
      try {
        await deleteManifest({ registry: pair.to.registry, repository, digest });
        for (const tag of tags) note(report, 'deleted', `${repository}:${tag}`);
      } catch (err) {
        fail(report, `${repository}@${digest}`, err);
      }
    }
  });
  return report;
}
