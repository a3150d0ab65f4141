import type { ServiceContainer } from '../contracts/services.ts';
import type { Inventory } from './db.ts';
import { isoTime, type ReleaseOutcome, type ServiceMachinesTable } from './tables.ts';

export interface ReleaseRecord {
  id: number;
  service: string;
  version: string;
  digest: string | null;
  requestedBy: string;
  reason: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  finishedAt: string | null;
  outcome: ReleaseOutcome;
  detail: string | null;
}

export interface NewRelease {
  service: string;
  version: string;
  requestedBy: string;
  reason: string;
  workflowId: string;
  runId: string;
}

/** Records a deploy as running; the same run recorded again (a retried activity) is a no-op. */
export async function recordRelease(db: Inventory, r: NewRelease): Promise<void> {
  await db
    .insertInto('service_releases')
    .values({
      service: r.service,
      version: r.version,
      digest: null,
      requested_by: r.requestedBy,
      reason: r.reason,
      workflow_id: r.workflowId,
      run_id: r.runId,
      started_at: Date.now(),
      finished_at: null,
      outcome: 'running',
      detail: null,
    })
    .onConflict((oc) => oc.column('run_id').doNothing())
    .execute();
}

/** How a run's release ended (and its digest once known); `running` with a digest only fills the digest in. */
export async function finishRelease(db: Inventory, runId: string, r: { outcome: ReleaseOutcome; digest?: string; detail?: string }): Promise<void> {
  await db
    .updateTable('service_releases')
    .set({ outcome: r.outcome, ...(r.digest ? { digest: r.digest } : {}), ...(r.detail !== undefined ? { detail: r.detail.slice(0, 2000) } : {}), ...(r.outcome === 'running' ? {} : { finished_at: Date.now() }) })
    .where('run_id', '=', runId)
    .execute();
}

/** A service's releases, newest first. */
export async function listReleases(db: Inventory, service: string, limit = 20): Promise<ReleaseRecord[]> {
  const rows = await db.selectFrom('service_releases').selectAll().where('service', '=', service).orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  return rows.map((r) => ({
    id: r.id,
    service: r.service,
    version: r.version,
    digest: r.digest,
    requestedBy: r.requested_by,
    reason: r.reason,
    workflowId: r.workflow_id,
    runId: r.run_id,
    startedAt: isoTime(r.started_at)!,
    finishedAt: isoTime(r.finished_at),
    outcome: r.outcome,
    detail: r.detail,
  }));
}

export interface ServiceMachineRecord {
  service: string;
  machineId: string;
  version: string | null;
  digest: string | null;
  containers: ServiceContainer[];
  health: ServiceMachinesTable['health'];
  detail: string | null;
  updatedAt: string;
}

export async function setServiceMachine(db: Inventory, s: Omit<ServiceMachineRecord, 'updatedAt'>): Promise<void> {
  const row = { version: s.version, digest: s.digest, containers: JSON.stringify(s.containers), health: s.health, detail: s.detail, updated_at: Date.now() };
  await db
    .insertInto('service_machines')
    .values({ service: s.service, machine_id: s.machineId, ...row })
    .onConflict((oc) => oc.columns(['service', 'machine_id']).doUpdateSet(row))
    .execute();
}

/** What each machine of a service runs (a service with no machines yet: none). */
export async function listServiceMachines(db: Inventory, filter: { service?: string; machineId?: string }): Promise<ServiceMachineRecord[]> {
  let q = db.selectFrom('service_machines').selectAll();
  if (filter.service !== undefined) q = q.where('service', '=', filter.service);
  if (filter.machineId !== undefined) q = q.where('machine_id', '=', filter.machineId);
  const rows = await q.orderBy('service').orderBy('machine_id').execute();
  return rows.map((r) => ({
    service: r.service,
    machineId: r.machine_id,
    version: r.version,
    digest: r.digest,
    containers: JSON.parse(r.containers) as ServiceContainer[],
    health: r.health,
    detail: r.detail,
    updatedAt: isoTime(r.updated_at)!,
  }));
}
