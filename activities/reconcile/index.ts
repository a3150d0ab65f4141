import { ApplicationFailure } from '@temporalio/activity';
import { reservedTags, type CloudProvider, type Machine } from '../cloud/provider.ts';
import { asTemporalFailure } from '../failures.ts';
import { findMachine, findMachineByProviderId, installationId, listMachines, machineStates, type Inventory, type MachineRecord } from '../../inventory/index.ts';
import { heartbeating, retryingAtProvider, type MachineContext } from '../machine-context.ts';
import { ownerOf, reconcileReport, type ReconcileReport } from './report.ts';

export type { Drift, Ghost, Orphan, ReconcileReport } from './report.ts';

const liveStates = machineStates.filter((s) => s !== 'destroyed');
const isLive = (m: MachineRecord | undefined): m is MachineRecord => m !== undefined && m.state !== 'destroyed';

/**
 * Whether the provider's machine `providerId` is an orphan of the cluster: held by the provider, tagged for the
 * cluster, and accounted for by no live machine of the inventory (neither by its provider id nor as a create in
 * flight under its idempotency key).
 */
export async function orphanStatus(db: Inventory, provider: CloudProvider, cluster: string, providerId: string): Promise<{ orphan: true; machine: Machine } | { orphan: false; gone: boolean; why: string }> {
  const machine = await provider.describe(providerId);
  if (machine.state === 'terminated') return { orphan: false, gone: true, why: `the provider of cluster ${cluster} holds no machine ${providerId}` };
  if (machine.tags[reservedTags.cluster] !== cluster) return { orphan: false, gone: false, why: `${providerId} is not a machine of cluster ${cluster}: it has no ${reservedTags.cluster}=${cluster} tag` };
  const key = machine.tags[reservedTags.idempotencyKey];
  const owner = ownerOf(machine, [await findMachineByProviderId(db, cluster, providerId), key ? await findMachine(db, key) : undefined].filter(isLive));
  if (owner) return { orphan: false, gone: false, why: `${providerId} is machine ${owner.id} (${owner.pool}/${owner.name}, ${owner.state}) of this inventory: decommission it instead` };
  return { orphan: true, machine };
}

/** Reconciliation: the provider's machines held against the inventory, and what an admin does about an orphan. */
export function createReconcileActivities({ inventory, providerOf, clusterOf }: MachineContext) {
  return {
    /** Lists the cluster's machines at its provider and in the inventory and reports orphans, ghosts and drift. */
    async compareWithProvider({ cluster }: { cluster: string }): Promise<ReconcileReport> {
      clusterOf(cluster);
      return asTemporalFailure(async () => {
        const db = await inventory();
        const provider = await providerOf(cluster);
        const before = await listMachines(db, { cluster, state: liveStates });
        const atProvider = await heartbeating(() => provider.list(), 'listing the provider');
        const after = await listMachines(db, { cluster, state: liveStates });
        const price = (instanceType: string) => {
          try {
            return provider.hourlyPrice(instanceType);
          } catch {
            return null;
          }
        };
        return reconcileReport({ cluster, provider: provider.kind, installation: await installationId(db), before, atProvider, after, price, now: new Date() });
      });
    },

    /** The pool and name an orphan's tags give it (for its adoption), once it is checked to be an orphan. */
    async inspectOrphan({ cluster, providerId }: { cluster: string; providerId: string }): Promise<{ pool: string | null; name: string | null }> {
      clusterOf(cluster);
      return asTemporalFailure(async () => {
        const status = await orphanStatus(await inventory(), await providerOf(cluster), cluster, providerId);
        if (!status.orphan) throw ApplicationFailure.nonRetryable(status.why, 'NotAnOrphan');
        return { pool: status.machine.tags[reservedTags.pool] ?? null, name: status.machine.tags[reservedTags.name] ?? null };
      });
    },

    /** Destroys an orphan at its provider, after checking it is one; one already gone is fine. */
    async destroyOrphanMachine({ cluster, providerId }: { cluster: string; providerId: string }): Promise<{ destroyed: string[] }> {
      clusterOf(cluster);
      return asTemporalFailure(async () => {
        const provider = await providerOf(cluster);
        return retryingAtProvider(async () => {
          const status = await orphanStatus(await inventory(), provider, cluster, providerId);
          if (!status.orphan && status.gone) return { destroyed: [] };
          if (!status.orphan) throw ApplicationFailure.nonRetryable(status.why, 'NotAnOrphan');
          await heartbeating(() => provider.destroy(providerId), { destroying: providerId });
          return { destroyed: [providerId] };
        });
      });
    },
  };
}
