import { ApplicationFailure, continueAsNew, executeChild, isCancellation, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities, CopyImagesResult, ImageToCopy, RepositoryDrift } from '../activities/index.ts';
import { activityOptions, activityTiming } from '../contracts/activity-timing.ts';
import { syncProgressQuery, type Counted, type DriftCursor, type PairReport, type SyncPair, type SyncPlan, type SyncReport, type SyncRepositoriesInput, type SyncRunState } from '../contracts/sync.ts';
import { imagesToCopy, manifestsToDelete, type Doomed } from './drift-fixes.ts';
import { describeFailure } from './failures.ts';
import { pool } from './pool.ts';

/**
 * Catalogs and tag lists travel in pages, copies in batches, and runs continue as new before their history grows
 * long: a sync of any catalog keeps every payload and history far below Temporal's limits.
 */
const pagesPatch = 'sync-pages';
const listLimit = 100;
/** A failure's message in a report is cut here: a report is a payload too. */
const errorLimit = 500;
const counted: Counted[] = ['missing', 'different', 'extra', 'fixed', 'deleted'];
/**
 * Images per copyImages activity (and manifests per deleteManifests), one such activity at a time per sync batch:
 * two at once could copy sibling images of one repository side by side, which copyImages avoids within itself
 * (shared layers, see there).
 */
const imagesPerCopy = 100;
/**
 * Tags to fix per drift page: a page costs a few activities when copies and deletes go in batches, and one per tag
 * when Harbor replicates; either way a page adds at most ~700 events to a history.
 */
const pageItems = 400;
const harborPageItems = 100;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function emptyReport(pair: SyncPair): PairReport {
  const counts = { inSync: 0, failed: 0, missing: 0, different: 0, extra: 0, fixed: 0, deleted: 0 };
  return { from: pair.from.registry, to: pair.to.registry, repositories: 0, counts, missing: [], different: [], extra: [], fixed: [], deleted: [], failed: [] };
}

function note(report: PairReport, what: Counted, image: string) {
  report.counts[what]++;
  if (report[what].length < listLimit) report[what].push(image);
}

function noteFailure(report: PairReport, image: string, error: string) {
  report.counts.failed++;
  if (report.failed.length < listLimit) report.failed.push({ image, error: error.slice(0, errorLimit) });
}

function fail(report: PairReport, image: string, err: unknown) {
  if (isCancellation(err)) throw err;
  noteFailure(report, image, describeFailure(err));
}

function merge(into: PairReport, part: PairReport) {
  into.repositories += part.repositories;
  for (const k of Object.keys(into.counts) as (keyof PairReport['counts'])[]) into.counts[k] += part.counts[k];
  for (const k of counted) into[k].push(...part[k].slice(0, listLimit - into[k].length));
  into.failed.push(...part.failed.slice(0, listLimit - into.failed.length));
}

/** Past the plan's events per run: time to continue as new (or Temporal suggests it). */
function historyIsLong(plan: SyncPlan): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= (plan.eventsPerRun ?? 5000);
}

/**
 * One run of a sync rule, started by its Temporal Schedule: for every source -> target pair, page through the
 * catalog (filtered), and hand each page of repositories to a child workflow that compares tags and digests, copies
 * what is missing or different, deletes what is extra when the rule asks for it, and reports the drift.
 */
export async function syncRegistries(plan: SyncPlan, resumed?: SyncRunState): Promise<SyncReport> {
  const paged = patched(pagesPatch);
  const { workflowId } = workflowInfo();
  const key = (p: SyncPair) => `${p.from.registry}->${p.to.registry}`;
  const state: SyncRunState = resumed ?? { reports: plan.pairs.map(emptyReport), pairs: plan.pairs.map(() => ({ status: 'pending', batches: 0, batchesDone: 0 })) };
  setHandler(syncProgressQuery, () => Object.fromEntries(plan.pairs.map((p, i) => [key(p), { status: state.pairs[i].status, batchesDone: state.pairs[i].batchesDone, batches: state.pairs[i].batches }])));

  const syncPair = async (index: number) => {
    const pair = plan.pairs[index];
    const report = state.reports[index];
    const pairState = state.pairs[index];
    pairState.status = 'syncing';
    const { listRepositories, listRepositoryPage } = proxyActivities<Activities>(
      activityOptions(activityTiming.catalogPage, { maximumAttempts: plan.maxAttempts, taskQueue: pair.from.taskQueue, summary: `list ${pair.from.registry}` }),
    );
    const runBatch = async (batch: string[], i: number) => {
      try {
        merge(
          report,
          await executeChild(syncRepositories, {
            workflowId: `${workflowId}/${key(pair)}/${i}`,
            args: [{ plan, pair, repositories: batch }],
            staticSummary: `sync ${batch.length} repositories ${key(pair)}`,
          }),
        );
      } catch (err) {
        fail(report, `${batch[0]} .. ${batch[batch.length - 1]}`, err);
      }
      pairState.batchesDone++;
    };
    const listing = { registry: pair.from.registry, filter: plan.repositories, requestsPerSecond: plan.requestsPerSecond };
    if (!paged) {
      // Runs begun before the patch: the whole catalog in one activity result.
      let repositories: string[];
      try {
        repositories = await listRepositories(listing);
      } catch (err) {
        fail(report, `${pair.from.registry} catalog`, err);
        pairState.status = 'done';
        return;
      }
      const batches = chunks(repositories, plan.repositoriesPerBatch);
      pairState.batches = batches.length;
      await pool(batches, 2, runBatch);
      pairState.status = 'done';
      return;
    }
    // A catalog page per batch, the next page read while two batches run; stops early when the history is long.
    const running = new Set<Promise<void>>();
    while (pairState.status !== 'done' && !historyIsLong(plan)) {
      try {
        const page = await listRepositoryPage({ ...listing, after: pairState.after, limit: plan.repositoriesPerBatch });
        pairState.after = page.next;
        if (page.next === undefined) pairState.status = 'done';
        if (page.repositories.length === 0) continue;
        const batch = runBatch(page.repositories, pairState.batches++).finally(() => running.delete(batch));
        running.add(batch);
        if (running.size >= 2) await Promise.race(running);
      } catch (err) {
        fail(report, `${pair.from.registry} catalog${pairState.after ? ` after ${pairState.after}` : ''}`, err);
        pairState.status = 'done';
      }
    }
    await Promise.all(running);
  };
  for (const level of [...new Set(plan.pairs.map((p) => p.level))].sort((a, b) => a - b)) {
    const pairs = plan.pairs.flatMap((p, i) => (p.level === level && state.pairs[i].status !== 'done' ? [i] : []));
    await Promise.all(pairs.map(syncPair));
    if (pairs.some((i) => state.pairs[i].status !== 'done')) await continueAsNew<typeof syncRegistries>(plan, state);
  }

  const report: SyncReport = { rule: plan.rule, pairs: state.reports };
  const failed = report.pairs.reduce((n, p) => n + p.counts.failed, 0);
  if (failed > 0) {
    throw ApplicationFailure.create({ type: 'SyncIncomplete', message: `sync rule ${plan.rule}: ${failed} images or listings failed`, nonRetryable: true, details: [report] });
  }
  return report;
}

/**
 * One batch of repositories of one pair: compare, copy what differs, delete what is extra if asked; a drift page at
 * a time (the tags of several repositories, or a part of one), continuing as new when the history grows long.
 */
export async function syncRepositories(input: SyncRepositoriesInput): Promise<PairReport> {
  const paged = patched(pagesPatch);
  const { plan, pair, repositories } = input;
  const report = input.resume?.report ?? { ...emptyReport(pair), repositories: repositories.length };
  const atTarget = { maximumAttempts: plan.maxAttempts, taskQueue: pair.to.taskQueue };
  const { diffRepository, diffRepositories, deleteManifest, deleteManifests } = proxyActivities<Activities>(activityOptions(activityTiming.driftPage, atTarget));
  const { copyImageToRegistry } = proxyActivities<Activities>(activityOptions(activityTiming.copyImage, atTarget));
  // A batch of images may take long; its heartbeats say that it is alive.
  const { copyImages } = proxyActivities<Activities>(activityOptions(activityTiming.copyImages, atTarget));
  // mode harbor: Harbor's replication, driven from the main queue (a control activity on Harbor's API).
  const harbor = activityTiming.harborReplication;
  const { replicateViaHarbor } = proxyActivities<Activities>(activityOptions(harbor, { maximumAttempts: plan.maxAttempts, startToCloseTimeout: plan.harborDeadlineMs + harbor.startToCloseTimeout }));
  const limits = { requestsPerSecond: plan.requestsPerSecond, bytesPerSecond: plan.bytesPerSecond };
  const diffing = { source: pair.from.registry, target: pair.to.registry, tags: plan.tags, deleteExtra: plan.deleteExtra, requestsPerSecond: plan.requestsPerSecond };

  /**
   * Fixes images one activity each (Harbor's replication; runs begun before the patch, which copied that way too).
   * Returns the images it could not fix.
   */
  const fixEach = async (images: ImageToCopy[]) => {
    const unfixed = new Set<string>();
    // Harbor's policy for a repository and target carries the tag in its filter: one tag at a time there.
    await pool(images, pair.viaHarbor ? 1 : 2, async ({ repository, tag, digest }) => {
      const image = `${repository}:${tag}`;
      try {
        await (pair.viaHarbor
          ? replicateViaHarbor({ image, source: pair.from.registry, target: pair.to.registry, deadlineMs: plan.harborDeadlineMs })
          : // No progress signals: the batch's history stays small; its report says what was fixed.
            copyImageToRegistry({ image, digest, source: pair.from.registry, target: pair.to.registry, limits }));
        note(report, 'fixed', image);
      } catch (err) {
        unfixed.add(image);
        fail(report, image, err);
      }
    });
    return unfixed;
  };
  /**
   * Runs a batch activity over items, `imagesPerCopy` at a time: what it reports failed (all of a batch whose
   * activity failed) is noted as such, named by `nameOf`, and the rest handed to `done`.
   */
  const inBatches = async <T, F extends { error: string }>(items: T[], run: (batch: T[]) => Promise<{ failed: F[] }>, nameOf: (x: T | F) => string, done: (item: T) => void) => {
    const refused = new Set<string>();
    for (const batch of chunks(items, imagesPerCopy)) {
      let failed: { name: string; error: string }[];
      try {
        failed = (await run(batch)).failed.map((f) => ({ name: nameOf(f), error: f.error }));
      } catch (err) {
        if (isCancellation(err)) throw err;
        failed = batch.map((x) => ({ name: nameOf(x), error: describeFailure(err) }));
      }
      for (const f of failed) {
        refused.add(f.name);
        noteFailure(report, f.name, f.error);
      }
      for (const x of batch) if (!refused.has(nameOf(x))) done(x);
    }
    return refused;
  };
  const imageName = ({ repository, tag }: { repository: string; tag: string }) => `${repository}:${tag}`;
  const copyInBatches = (images: ImageToCopy[]) =>
    inBatches<ImageToCopy, CopyImagesResult['failed'][number]>(
      images,
      (batch) => copyImages({ source: pair.from.registry, target: pair.to.registry, images: batch, limits, maxAttempts: plan.maxAttempts }),
      imageName,
      (image) => note(report, 'fixed', imageName(image)),
    );
  const record = (drift: RepositoryDrift) => {
    report.counts.inSync += drift.inSync;
    for (const m of drift.missing) note(report, 'missing', `${drift.repository}:${m.tag}`);
    for (const d of drift.different) note(report, 'different', `${drift.repository}:${d.tag}`);
    for (const e of drift.extra) note(report, 'extra', `${drift.repository}:${e.tag}`);
  };
  const doomedOf = (drift: RepositoryDrift, unfixed: Set<string>): Doomed[] => (plan.deleteExtra ? manifestsToDelete(drift, unfixed) : []);
  const deleted = ({ repository, tags }: Doomed) => tags.forEach((tag) => note(report, 'deleted', `${repository}:${tag}`));

  if (!paged) {
    await pool(repositories, 4, async (repository) => {
      let drift;
      try {
        drift = await diffRepository({ ...diffing, repository });
      } catch (err) {
        fail(report, repository, err);
        return;
      }
      record(drift);
      const unfixed = await fixEach(imagesToCopy(drift));
      for (const d of doomedOf(drift, unfixed)) {
        try {
          await deleteManifest({ registry: pair.to.registry, repository, digest: d.digest });
          deleted(d);
        } catch (err) {
          fail(report, `${repository}@${d.digest}`, err);
        }
      }
    });
    return report;
  }

  const deleteInBatches = (doomed: Doomed[]) =>
    inBatches(
      doomed,
      (batch) => deleteManifests({ registry: pair.to.registry, manifests: batch.map(({ repository, digest }) => ({ repository, digest })), maxAttempts: plan.maxAttempts }),
      ({ repository, digest }) => `${repository}@${digest}`,
      deleted,
    );
  // Harbor fixes a tag per activity: smaller pages keep each page's events few.
  const diffPage = (from?: DriftCursor) => {
    const page = diffRepositories({ ...diffing, repositories, from, limit: pair.viaHarbor ? harborPageItems : pageItems, maxAttempts: plan.maxAttempts });
    page.catch(() => undefined); // awaited later; until then a failure must not count as unhandled
    return page;
  };

  // The next page is compared while this one's images are copied: its tags come after this page's.
  let from = input.resume?.from;
  let upcoming = diffPage(from);
  for (;;) {
    let page;
    try {
      page = await upcoming;
    } catch (err) {
      // The rest of the batch cannot be compared: reported as one failure, from where it stopped.
      fail(report, `${from?.repository ?? repositories[0]} .. ${repositories[repositories.length - 1]}`, err);
      return report;
    }
    for (const f of page.failed) noteFailure(report, f.repository, f.error);
    page.drifts.forEach(record);
    from = page.next;
    const long = historyIsLong(plan);
    if (from && !long) upcoming = diffPage(from);
    const images = page.drifts.flatMap(imagesToCopy);
    const unfixed = pair.viaHarbor ? await fixEach(images) : await copyInBatches(images);
    await deleteInBatches(page.drifts.flatMap((d) => doomedOf(d, unfixed)));
    if (!from) return report;
    if (long) await continueAsNew<typeof syncRepositories>({ plan, pair, repositories, resume: { from, report } });
  }
}
