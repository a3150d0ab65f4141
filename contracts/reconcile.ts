// reconcileInventory's result is its activity's report, as activities/reconcile/report.ts builds it.

export interface AdoptOrphanInput {
  cluster: string;
  providerId: string;
  /** Where it goes; by default where its tags say it was made for. */
  pool?: string;
  name?: string;
  idcTaskQueue: string;
}
