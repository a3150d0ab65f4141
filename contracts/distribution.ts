import { defineQuery } from '@temporalio/workflow';
import type { RegistryEndpoint } from './registry-endpoint.ts';

/**
 * One IDC of a distribution: its registries (its children pull from the first) and the IDCs that pull from it.
 */
export interface DistributionNode {
  idc: string;
  registries: RegistryEndpoint[];
  children: DistributionNode[];
}

export interface DistributeImageInput {
  image: string;
  /** The IDC tree below the source, as planning/idc-tree.ts plans it from berth.yaml. */
  plan: DistributionNode;
  /** Attempts per copy before an IDC is reported failed. */
  maxAttempts?: number;
}

export interface IdcResult {
  status: 'pending' | 'copying' | 'done' | 'failed' | 'skipped';
  /** The registry this IDC pulls from. */
  from: string;
  /** The child workflow that copies into this IDC: its own `progress` query shows bytes per registry. */
  workflowId: string;
  digest?: string;
  /** Bytes that crossed the link into this IDC (blobs the IDC already had are not counted). */
  bytes?: number;
  durationMs?: number;
  error?: string;
}

export type DistributeImageResult = Record<string, IdcResult>;

export const distributionProgressQuery = defineQuery<DistributeImageResult>('progress');
