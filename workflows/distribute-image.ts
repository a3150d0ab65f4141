import { ApplicationFailure, ChildWorkflowFailure, defineQuery, executeChild, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { describeFailure, replicateImage, resolveOptions, type RegistryEndpoint, type ReplicateImageResult } from './replicate-image.ts';

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
  /** The IDC tree below the source, as config/idc-tree.ts plans it from berth.yaml. */
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

/**
 * Fans an image out over the IDC tree: every IDC pulls from its parent once the parent has it (copies run on the
 * child IDC's task queue, near the data), so each inter-IDC link carries each blob once. Subtrees proceed
 * independently: a failed IDC stops only the IDCs below it, which are reported skipped.
 */
export async function distributeImage({ image, plan, maxAttempts }: DistributeImageInput): Promise<DistributeImageResult> {
  const { workflowId } = workflowInfo();
  const results: DistributeImageResult = {};
  const source = plan.registries[0];
  const register = (parent: DistributionNode | undefined, node: DistributionNode) => {
    // The source IDC appears only when it has more registries to fill.
    if (parent || node.registries.length > 1) {
      const id = parent ? `${workflowId}/${parent.idc}->${node.idc}` : `${workflowId}/${node.idc}`;
      results[node.idc] = { status: 'pending', from: (parent ?? node).registries[0].registry, workflowId: id };
    }
    node.children.forEach((c) => register(node, c));
  };
  register(undefined, plan);
  setHandler(distributionProgressQuery, () => results);

  // One digest for the whole tree: a tag that moves on the source meanwhile cannot mix two images.
  const { resolveImage } = proxyActivities<Activities>(resolveOptions(image, source));
  let digest: string;
  try {
    ({ digest } = await resolveImage({ image, registry: source.registry }));
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.create({ type: 'DistributionFailed', message: `${image} cannot be read on ${source.registry}: ${describeFailure(err)}`, nonRetryable: true });
  }

  const copy = (from: RegistryEndpoint, targets: RegistryEndpoint[], id: string, what: string): Promise<ReplicateImageResult> =>
    executeChild(replicateImage, { workflowId: id, args: [{ image, digest, source: from, targets, maxAttempts }], staticSummary: what });
  const fail = (r: IdcResult, err: unknown, started: number) => {
    if (isCancellation(err)) throw err;
    Object.assign(r, { status: 'failed', error: describeFailure(err instanceof ChildWorkflowFailure ? err.cause : err), durationMs: Date.now() - started });
  };
  const skipBelow = (node: DistributionNode, why: string) => {
    for (const c of node.children) {
      Object.assign(results[c.idc], { status: 'skipped', error: why });
      skipBelow(c, why);
    }
  };

  const distribute = async (parent: DistributionNode | undefined, node: DistributionNode): Promise<void> => {
    const r = results[node.idc];
    const [entry, ...others] = node.registries;
    const started = Date.now();
    if (r) r.status = 'copying';
    let bytes = 0;
    if (parent) {
      try {
        const edge = await copy(parent.registries[0], [entry], r.workflowId, `${image} ${parent.idc} -> ${node.idc}`);
        bytes = edge[entry.registry].bytesCopied;
      } catch (err) {
        fail(r, err, started);
        skipBelow(node, `${node.idc} did not receive the image`);
        return;
      }
    }
    // Once the entry registry has the image, the IDC's other registries fill from it (not over the link again)
    // while its child IDCs already pull from it.
    const local = async () => {
      try {
        if (others.length > 0) {
          const inside = await copy(entry, others, parent ? `${r.workflowId}/local` : r.workflowId, `${image} within ${node.idc}`);
          if (!parent) bytes = others.reduce((sum, o) => sum + inside[o.registry].bytesCopied, 0);
        }
        if (r) Object.assign(r, { status: 'done', digest, bytes, durationMs: Date.now() - started });
      } catch (err) {
        fail(r, err, started);
      }
    };
    await Promise.all([local(), ...node.children.map((c) => distribute(node, c))]);
  };
  await distribute(undefined, plan);

  const failed = Object.entries(results).filter(([, r]) => r.status !== 'done');
  if (failed.length > 0) {
    throw ApplicationFailure.create({
      type: 'DistributionIncomplete',
      message: `${image} reached ${Object.keys(results).length - failed.length} of ${Object.keys(results).length} IDCs; ${failed.map(([idc, r]) => `${idc} ${r.status}: ${r.error}`).join('; ')}`,
      nonRetryable: true,
      details: [results],
    });
  }
  return results;
}
