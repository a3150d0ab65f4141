import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

/**
 * berth's own metrics in this process. Activities record them where the work happens (the worker of the IDC that
 * copied, the main worker that failed over); Prometheus sums them over the workers it scrapes.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const counter = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers: [registry] });

const copiedBytes = counter('berth_replicated_bytes_total', 'Blob bytes a copy put on its target, by link (source->target registry)', ['link']);
const copiedBlobs = counter('berth_blobs_copied_total', 'Blobs a copy put on its target, by link', ['link']);
const skippedBlobs = counter('berth_blobs_skipped_total', 'Blobs a copy found on its target already, by link', ['link']);
const machinesProvisioned = counter('berth_machines_provisioned_total', 'Machines provisioned and registered, by cluster', ['cluster']);
const machinesFailed = counter('berth_machines_failed_total', 'Machine provisionings that failed (and were compensated), by cluster', ['cluster']);
const failovers = counter('berth_failovers_total', 'Failovers and failbacks of HA groups, by group, direction and outcome', ['group', 'direction', 'outcome']);
const activityFailures = counter('berth_activity_failures_total', 'Failed activity attempts, by activity and failure type (RegistryAuthError, CancelledFailure, ...)', ['activity', 'type']);

/** A finished copy of one image over one link, e.g. `registry-a->registry-b`. */
export function recordCopy(link: string, copy: { bytesCopied: number; blobsCopied: number; blobsSkipped: number }): void {
  copiedBytes.inc({ link }, copy.bytesCopied);
  copiedBlobs.inc({ link }, copy.blobsCopied);
  skippedBlobs.inc({ link }, copy.blobsSkipped);
}

export function recordProvisioning(cluster: string, outcome: 'provisioned' | 'failed'): void {
  (outcome === 'provisioned' ? machinesProvisioned : machinesFailed).inc({ cluster });
}

export function recordFailover(group: string, direction: 'failover' | 'failback', outcome: 'completed' | 'failed'): void {
  failovers.inc({ group, direction, outcome });
}

export function recordActivityFailure(activity: string, type: string): void {
  activityFailures.inc({ activity, type });
}
