import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { RegistryEndpoint } from './registry-endpoint.ts';

/** How far a copy got: what `progress` shows and the copy activity signals while it runs. */
export interface CopyCounts {
  bytesTotal: number;
  bytesCopied: number;
  blobsTotal: number;
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
}

/** How a copy in a distribution's tree works with the copies above and below it (copy-image.ts has the detail). */
export interface Pipelining {
  /** The registry that holds the whole image (the distribution's source): manifests and referrers come from it. */
  manifestsFrom: string;
  /** Wait for each blob on the source, which is receiving them from its own parent. */
  waitForSource: boolean;
  /** Copy large blobs one at a time, in order, for the IDCs below the target, which wait on them. */
  inOrder: boolean;
}

export interface ReplicateImageInput {
  image: string;
  /** The digest to copy, when the caller has resolved the image already (a distribution, a sync). */
  digest?: string;
  source: RegistryEndpoint;
  targets: RegistryEndpoint[];
  /** Attempts per copy before a target is reported failed (berth.yaml copy.maxAttempts); 10 when not given. */
  maxAttempts?: number;
  /** In a distribution: the copies start while the source is still receiving the image. */
  pipeline?: Pipelining;
}

export interface TargetResult {
  digest: string;
  bytesCopied: number;
  blobsCopied: number;
  blobsSkipped: number;
  /** Signatures, SBOMs and other artifacts referring to the image that are on the target with it. */
  referrers: number;
  durationMs: number;
}

export type ReplicateImageResult = Record<string, TargetResult>;

export interface TargetProgress extends CopyCounts {
  idc: string;
  status: 'copying' | 'done' | 'failed';
  attempt: number;
  digest?: string;
  error?: string;
}

export interface CopyProgressSignal extends CopyCounts {
  target: string;
  attempt: number;
}

export const progressQuery = defineQuery<Record<string, TargetProgress>>('progress');
/** Sent by the copy activity while it runs, so `progress` shows bytes and blobs, not just a status. */
export const copyProgressSignal = defineSignal<[CopyProgressSignal]>('copyProgress');
