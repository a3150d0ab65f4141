import { defineQuery } from '@temporalio/workflow';

export interface MachineTarget {
  /** The machine's inventory id and idempotency key; a new one per provisioning when not given. */
  machineId?: string;
  cluster: string;
  pool: string;
  name: string;
  /** The cluster IDC's task queue: SSH to the machine goes from inside its IDC. */
  idcTaskQueue: string;
  /** Take this orphan (its provider id) as the machine instead of creating one. */
  adopt?: { providerId: string };
}

export interface ProvisionResult {
  machineId: string;
  address: string;
  sshPort: number;
  hostKeyFingerprint: string;
  steps: { step: string; status: 'changed' | 'ok'; detail?: string }[];
}

export const machineProgressQuery = defineQuery<Record<string, { status: string; step?: string }>>('progress');

export interface ScalePoolInput {
  cluster: string;
  pool: string;
  desired: number;
  /** Machines created (or destroyed) at once. */
  maxConcurrent: number;
  idcTaskQueue: string;
}

export interface ScalePoolResult {
  created: string[];
  /** The current release of each service of the pool, started on a machine it created (0.3.0 on). */
  placed?: { machine: string; service: string; version: string }[];
  removed: string[];
  failed: { name: string; error: string }[];
}
