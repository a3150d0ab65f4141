import { ApplicationFailure, ChildWorkflowFailure, executeChild, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { ReconcileReport } from '../activities/reconcile/index.ts';
import type { ProvisionResult } from '../contracts/provisioning.ts';
import type { AdoptOrphanInput } from '../contracts/reconcile.ts';
import { describeFailure } from './failures.ts';
import { destroying, machineWorkflowId, provisionMachine } from './provision-machine.ts';

/** Runs `step`; its failure (an activity's, a child's) becomes this workflow's own, saying what failed and why. */
async function failingAs<T>(type: string, what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.create({ type, message: `${what}: ${describeFailure(err instanceof ChildWorkflowFailure ? err.cause : err)}`, nonRetryable: true });
  }
}

const inspecting = { startToCloseTimeout: '10 minutes', heartbeatTimeout: '1 minute', retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 5 } } as const;

/**
 * Started by the cluster's Temporal Schedule (and on request): the provider's machines held against the
 * inventory. Reports orphans (at the provider, in no live machine), ghosts (live machines the provider no longer
 * holds) and drift (states that disagree), with their cost; it changes nothing.
 */
export async function reconcileInventory({ cluster }: { cluster: string }): Promise<ReconcileReport> {
  const { compareWithProvider } = proxyActivities<Activities>({ ...inspecting, summary: `compare ${cluster} with its provider` });
  return failingAs('ReconcileFailed', `cluster ${cluster}`, () => compareWithProvider({ cluster }));
}

/** An admin's remedy for an orphan: destroyed at its provider, retried until it is gone, if it still is an orphan. */
export async function destroyOrphan({ cluster, providerId }: { cluster: string; providerId: string }): Promise<{ destroyed: string[] }> {
  const { destroyOrphanMachine } = proxyActivities<Activities>({ ...destroying, summary: `destroy orphan ${providerId}` });
  return failingAs('OrphanNotDestroyed', `orphan ${providerId} of cluster ${cluster}`, () => destroyOrphanMachine({ cluster, providerId }));
}

/**
 * The other remedy: the orphan becomes a machine of the inventory, provisioned as a new one is from the provider's
 * answer on (SSH and its host key pinned, the pool's init profile run). If that fails it is destroyed, as a machine
 * whose provisioning fails is.
 */
export async function adoptOrphan(input: AdoptOrphanInput): Promise<ProvisionResult> {
  const { cluster, providerId } = input;
  const { inspectOrphan } = proxyActivities<Activities>({ ...inspecting, summary: `inspect orphan ${providerId}` });
  const what = `orphan ${providerId} of cluster ${cluster}`;
  const tagged = await failingAs('AdoptionRefused', `${what}, nothing changed`, () => inspectOrphan({ cluster, providerId }));
  const pool = input.pool ?? tagged.pool;
  const name = input.name ?? tagged.name;
  if (!pool || !name) throw ApplicationFailure.create({ type: 'AdoptionRefused', message: `${what} has no pool or name tag of berth's: give pool and name to adopt it`, nonRetryable: true });
  return failingAs('AdoptionFailed', what, () =>
    executeChild(provisionMachine, {
      workflowId: machineWorkflowId(cluster, pool, name),
      args: [{ cluster, pool, name, idcTaskQueue: input.idcTaskQueue, adopt: { providerId } }],
      staticSummary: `adopt ${providerId} as ${cluster}/${pool}/${name}`,
    }),
  );
}
