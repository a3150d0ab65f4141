// The contract of deployService: what the API hands the workflow, what the workflow hands its activities, and the
// updates and query a running deploy answers. Workflow-safe: types and Temporal definitions only.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DistributionNode } from './distribution.ts';
import type { RegistryEndpoint } from './registry-endpoint.ts';

/** A secret by reference (an env var or a file the worker reads), never its value. */
export type EnvValue = { value: string } | { env: string } | { file: string };

export type HealthCheck = ({ http: { path: string; port: number } } | { command: string[] }) & {
  intervalMs: number;
  timeoutMs: number;
  /** Failed checks in a row before the container counts as unhealthy. */
  retries: number;
};

/** A service as berth.yaml declares it, with everything the workflow needs resolved (no secrets: references). */
export interface ServiceSpec {
  name: string;
  project?: string;
  /** The image's repository, the same in every IDC registry. */
  repository: string;
  cluster: string;
  pool: string;
  replicas: number;
  /** Container ports; each is published on a port the machine's engine picks (shown per replica). */
  ports: number[];
  env: Record<string, EnvValue>;
  health: HealthCheck;
  maxUnavailable: number;
  maxSurge: number;
  /** A canary batch of one machine first, then wait for `approve` before the rest. */
  approval: boolean;
}

export interface DeployServiceInput {
  service: ServiceSpec;
  version: string;
  /** The cluster IDC's registry: the machines pull from it. */
  registry: RegistryEndpoint;
  /** The IDC tree from the master down, when the cluster's IDC is below it: distributed to when the image is missing. */
  distribution?: DistributionNode;
  /** The cluster IDC's task queue: the machines' engines are reached from inside their IDC. */
  idcTaskQueue: string;
  requestedBy: string;
  /** A rollback redeploys an earlier release: recorded as such. */
  reason?: 'deploy' | 'rollback';
}

/** One machine of the rollout, as the deploy's progress shows it. */
export interface MachineRollout {
  machineId: string;
  name: string;
  status: 'pending' | 'updating' | 'done' | 'unchanged' | 'failed' | 'rolling-back' | 'rolled-back';
  /** The version it ran before this deploy (none: the service is new on it). */
  previous?: string;
  error?: string;
}

export interface BatchProgress {
  status: 'pending' | 'running' | 'done' | 'failed' | 'waiting-approval';
  machines: string[];
  /** Replicas replaced so far, of `total`: the CLI draws a bar of it. */
  replaced: number;
  total: number;
}

export interface DeployProgress {
  status: 'resolving' | 'distributing' | 'rolling' | 'paused' | 'waiting-approval' | 'rolling-back' | 'done' | 'failed';
  version: string;
  digest?: string;
  batches: BatchProgress[];
  machines: Record<string, MachineRollout>;
}

export interface DeployServiceResult {
  version: string;
  digest: string;
  /** Machines updated, and machines found already running the version (not restarted). */
  updated: string[];
  unchanged: string[];
}

/** A replica as a machine's engine runs it. */
export interface ServiceContainer {
  id: string;
  replica: number;
  version: string;
  digest: string;
  state: string;
  /** Container port -> the machine's published port. */
  ports: Record<string, number>;
}

/** What a service's machines should run now: its last succeeded release. */
export interface CurrentRelease {
  service: ServiceSpec;
  version: string;
  digest: string;
}

export const deployProgressQuery = defineQuery<DeployProgress>('progress');
export const pauseDeployUpdate = defineUpdate<DeployProgress['status'], []>('pause');
export const resumeDeployUpdate = defineUpdate<DeployProgress['status'], []>('resume');
export const approveDeployUpdate = defineUpdate<DeployProgress['status'], []>('approve');

/** One deploy per service at a time: the ID a second request finds. */
export const deployWorkflowId = (service: string) => `deploy:${service}`;
