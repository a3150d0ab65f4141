import { ApplicationFailure, CancellationScope, ChildWorkflowFailure, executeChild, isCancellation, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { resolveOptions } from '../contracts/activity-timing.ts';
import { distributionProgressQuery, type DistributeImageInput, type DistributeImageResult, type DistributionNode, type IdcResult } from '../contracts/distribution.ts';
import type { RegistryEndpoint } from '../contracts/registry-endpoint.ts';
import type { Pipelining, ReplicateImageResult } from '../contracts/replication.ts';
import { describeFailure } from './failures.ts';
import { replicateImage } from './replicate-image.ts';

/**
 * Fans an image out over the IDC tree: every IDC pulls from its parent (copies run on the child IDC's task queue,
 * near the data), so each inter-IDC link carries each blob once. An IDC starts as its parent does and pulls each
 * blob as soon as the parent holds it (the parent writes its tag last; the child reads the manifests from the
 * source), so the levels of the tree overlap rather than follow one another. Subtrees proceed independently: a
 * failed IDC stops only the IDCs below it, which are reported skipped.
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

  const copy = (from: RegistryEndpoint, targets: RegistryEndpoint[], id: string, what: string, pipeline?: Pipelining): Promise<ReplicateImageResult> =>
    executeChild(replicateImage, { workflowId: id, args: [{ image, digest, source: from, targets, maxAttempts, ...(pipeline ? { pipeline } : {}) }], staticSummary: what });
  const fail = (r: IdcResult, err: unknown, started: number) => {
    if (isCancellation(err)) throw err;
    Object.assign(r, { status: 'failed', error: describeFailure(err instanceof ChildWorkflowFailure ? err.cause : err), durationMs: Date.now() - started });
  };
  // An IDC below that finished already (it pulled every blob before its parent's copy failed) keeps the image.
  const skipBelow = (node: DistributionNode, why: string) => {
    for (const c of node.children) {
      if (results[c.idc].status !== 'done') Object.assign(results[c.idc], { status: 'skipped', error: why });
      skipBelow(c, why);
    }
  };

  /** The copy over the link into an IDC's entry registry: the bytes it sent, or undefined when it failed (reported). */
  const intoIdc = async (parent: DistributionNode, node: DistributionNode, started: number, pipeline?: Pipelining): Promise<number | undefined> => {
    const r = results[node.idc];
    const entry = node.registries[0];
    try {
      const edge = await copy(parent.registries[0], [entry], r.workflowId, `${image} ${parent.idc} -> ${node.idc}`, pipeline);
      return edge[entry.registry].bytesCopied;
    } catch (err) {
      fail(r, err, started);
      return undefined;
    }
  };
  // Once the entry registry has the image, the IDC's other registries fill from it (not over the link again)
  // while its child IDCs already pull from it.
  const withinIdc = async (parent: DistributionNode | undefined, node: DistributionNode, started: number, bytes: number): Promise<void> => {
    const r = results[node.idc];
    const [entry, ...others] = node.registries;
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
  const skipped = (node: DistributionNode) => skipBelow(node, `${node.idc} did not receive the image`);

  // Before 0.2: an IDC starts once its parent holds the whole image.
  const distribute = async (parent: DistributionNode | undefined, node: DistributionNode): Promise<void> => {
    const started = Date.now();
    if (results[node.idc]) results[node.idc].status = 'copying';
    const bytes = parent ? await intoIdc(parent, node, started) : 0;
    if (bytes === undefined) return skipped(node);
    await Promise.all([withinIdc(parent, node, started, bytes), ...node.children.map((c) => distribute(node, c))]);
  };

  // An IDC starts with its parent and waits for each blob there; a failed IDC cancels the copies below it.
  const pipelined = async (parent: DistributionNode | undefined, node: DistributionNode): Promise<void> => {
    const started = Date.now();
    if (results[node.idc]) results[node.idc].status = 'copying';
    const below = new CancellationScope();
    let cut = false;
    // Settles when every copy below has: with nothing when they succeeded, or were cancelled because this IDC
    // failed; with the error otherwise (the distribution was cancelled).
    const children = below.run(() => Promise.allSettled(node.children.map((c) => pipelined(node, c)))).then((settled) => (cut ? undefined : settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')?.reason));
    const pipeline = { manifestsFrom: source.registry, waitForSource: parent !== plan, inOrder: node.children.length > 0 };
    const bytes = parent
      ? await intoIdc(parent, node, started, pipeline).catch(async (err) => {
          await children; // cancelled with this one: let them end before this one does
          throw err;
        })
      : 0;
    if (bytes === undefined) {
      cut = true;
      below.cancel();
      await children;
      return skipped(node);
    }
    const [, err] = await Promise.all([withinIdc(parent, node, started, bytes), children]);
    if (err) throw err;
  };
  await (patched('pipelined-distribution') ? pipelined(undefined, plan) : distribute(undefined, plan));

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
