import { ApplicationFailure, Context } from '@temporalio/activity';
import ssh2 from 'ssh2';
import type { BerthConfig } from '../config/load.ts';
import { activityTiming } from '../contracts/activity-timing.ts';
import { machineSpecSchema, madeBy, ProviderError, type CloudProvider } from './cloud/provider.ts';
import { recordProvisioning } from '../metrics/registry.ts';
import { asTemporalFailure } from './failures.ts';
import { resolvePrivateKey } from './hosts/private-key.ts';
import {
  findMachine,
  findMachineByProviderId,
  getMachine,
  InventoryError,
  listMachines,
  pinHostKey,
  projectedMonthlyCost,
  recordMachine,
  recordMachineEvent,
  transitionMachine,
  type MachineRecord,
  type MachineState,
} from '../inventory/index.ts';
import { heartbeating, machineContext, retryingAtProvider } from './machine-context.ts';
import { createReconcileActivities, orphanStatus } from './reconcile/index.ts';
import { remedies } from './reconcile/report.ts';

export interface MachineRef {
  machineId: string;
  cluster: string;
}

export interface ReserveMachineInput extends MachineRef {
  pool: string;
  name: string;
}

/** What a destroy did at the provider: the machines it ended (none when nothing had been created). */
export interface DestroyOutcome {
  destroyed: string[];
}

/** Polls while a machine boots; the activity heartbeats on every poll. */
const pollEveryMs = activityTiming.waitMachineRunning.heartbeat.everyMs;
/** A destroy heartbeats while the provider is asked. */
const destroyEveryMs = activityTiming.destroyMachine.heartbeat.everyMs;

/**
 * Activities of provisioning and reconciliation, on the main queue (control activities): the inventory, the
 * budget, and the cluster's provider. One inventory connection per worker process, opened on first use.
 */
export function createMachineActivities(config: BerthConfig) {
  const context = machineContext(config);
  const { inventory, providerOf, clusterOf } = context;

  /**
   * A create that comes after compensation gave the machine up (a late retry of an attempt that timed out): it
   * undoes whatever the key made, so that nothing outlives the provisioning.
   */
  const givenUp = async (provider: CloudProvider, m: MachineRecord): Promise<never> => {
    const made = await provider.findByKey(m.id);
    for (const x of made) await provider.destroy(x.id);
    const undone = made.length > 0 ? `${made.map((x) => x.id).join(', ')}, made meanwhile, was destroyed` : 'nothing was created for it';
    throw ApplicationFailure.nonRetryable(`machine ${m.id} is ${m.state}: its provisioning was given up, and ${undone}`, 'MachineAbandoned');
  };

  return {
    /**
     * Records the machine as requested and checks the cluster's monthly budget with it counted: a create that
     * would exceed it is refused before anything exists, with the amount of the excess.
     */
    async reserveMachine({ machineId, cluster, pool, name }: ReserveMachineInput): Promise<MachineRecord> {
      const c = clusterOf(cluster);
      const p = c.pools.find((x) => x.name === pool);
      if (!p) throw ApplicationFailure.nonRetryable(`cluster ${cluster} has no pool "${pool}"`, 'UnknownPool');
      return asTemporalFailure(async () => {
        const db = await inventory();
        const provider = await providerOf(cluster);
        const machine = await recordMachine(db, { id: machineId, cluster, pool, provider: provider.kind, name, instanceType: p.instanceType, hourlyPrice: provider.hourlyPrice(p.instanceType) });
        if (c.monthlyBudget !== undefined) {
          const projected = await projectedMonthlyCost(db, cluster);
          if (projected > c.monthlyBudget) {
            const reason = `the monthly budget of cluster ${cluster} (${c.monthlyBudget.toFixed(2)}) would be exceeded by ${(projected - c.monthlyBudget).toFixed(2)} (projected ${projected.toFixed(2)} with this machine)`;
            await transitionMachine(db, machineId, 'destroyed', { detail: reason, failureReason: reason });
            throw ApplicationFailure.nonRetryable(reason, 'BudgetExceeded');
          }
        }
        return machine;
      });
    },

    /** Asks the provider for the machine; the machine's id is the idempotency key, so a retry finds the first. */
    async createMachine({ machineId, cluster }: MachineRef): Promise<{ providerId: string }> {
      return asTemporalFailure(async () => {
        const db = await inventory();
        const provider = await providerOf(cluster);
        const m = await getMachine(db, machineId);
        if (m.state !== 'requested' && m.state !== 'creating') return givenUp(provider, m);
        const c = clusterOf(cluster);
        const publicKey = ssh2.utils.parseKey(resolvePrivateKey(cluster, c.ssh.privateKey));
        if (publicKey instanceof Error) throw ApplicationFailure.nonRetryable(`the SSH key of cluster ${cluster} cannot be read: ${publicKey.message}`, 'SecretUnavailable');
        const spec = machineSpecSchema.safeParse({
          cluster,
          pool: m.pool,
          name: m.name,
          instanceType: m.instanceType,
          idempotencyKey: machineId,
          sshUser: c.ssh.user,
          sshPublicKey: `${publicKey.type} ${publicKey.getPublicSSH().toString('base64')}`,
        });
        // A spec that does not validate never will: fail now rather than retry.
        if (!spec.success) throw ApplicationFailure.nonRetryable(`machine ${machineId}: ${spec.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 'InvalidInput');
        const created = await provider.create(spec.data).catch(async (err) => {
          if (!(err instanceof ProviderError && err.type === 'NameClash' && err.opts.holder)) throw err;
          const owner = await findMachineByProviderId(db, cluster, err.opts.holder.id);
          const whose = owner
            ? `it is machine ${owner.id} (${owner.state}) of this inventory`
            : `no machine of this inventory accounts for it: an orphan; ${remedies.orphan(cluster, err.opts.holder.id)}, then ask for ${m.name} again`;
          throw ApplicationFailure.nonRetryable(`${err.message}; ${whose}`, 'NameClash');
        });
        try {
          await transitionMachine(db, machineId, 'creating', { providerId: created.id, detail: created.created ? 'created' : 'found by its idempotency key' });
        } catch (err) {
          if (err instanceof InventoryError && err.type === 'InvalidTransition') return givenUp(provider, await getMachine(db, machineId));
          throw err;
        }
        return { providerId: created.id };
      });
    },

    /**
     * Takes an orphan (a machine of the cluster at its provider that no live machine of the inventory accounts
     * for) as this machine's, instead of creating one; the rest of provisioning brings it to the pool's profile.
     */
    async adoptMachine({ machineId, cluster, providerId }: MachineRef & { providerId: string }): Promise<{ providerId: string }> {
      return asTemporalFailure(async () => {
        const db = await inventory();
        const m = await getMachine(db, machineId);
        if (m.state === 'creating' && m.providerId === providerId) return { providerId };
        if (m.state !== 'requested') throw ApplicationFailure.nonRetryable(`machine ${machineId} is ${m.state}: its provisioning was given up, nothing is adopted for it`, 'MachineAbandoned');
        const status = await orphanStatus(db, await providerOf(cluster), cluster, providerId);
        if (!status.orphan) throw ApplicationFailure.nonRetryable(status.why, 'NotAnOrphan');
        await transitionMachine(db, machineId, 'creating', { providerId, detail: `adopted ${providerId}, made by ${madeBy(status.machine)}` });
        return { providerId };
      });
    },

    /** Waits until the provider reports the machine running, with an address SSH can reach. */
    async waitMachineRunning({ machineId, cluster }: MachineRef): Promise<{ address: string; sshPort: number }> {
      const ctx = Context.current();
      return asTemporalFailure(async () => {
        const db = await inventory();
        const { providerId } = await getMachine(db, machineId);
        const provider = await providerOf(cluster);
        for (;;) {
          const m = await provider.describe(providerId!);
          ctx.heartbeat(m.state);
          if (m.state === 'running' && m.address && m.sshPort) {
            await transitionMachine(db, machineId, 'running', { address: m.address, sshPort: m.sshPort });
            return { address: m.address, sshPort: m.sshPort };
          }
          if (m.state === 'terminated' || m.state === 'stopped') throw ApplicationFailure.nonRetryable(`machine ${machineId} is ${m.state} instead of starting`, 'MachineFailed');
          await ctx.sleep(pollEveryMs);
        }
      });
    },

    /** Records the host key seen on first contact; a later contact with another key is refused (HostKeyMismatch). */
    async pinMachineHostKey({ machineId, fingerprint }: { machineId: string; fingerprint: string }): Promise<'pinned' | 'verified'> {
      return asTemporalFailure(async () => pinHostKey(await inventory(), machineId, fingerprint));
    },

    async setMachineState({ machineId, state, detail }: { machineId: string; state: MachineState; detail?: string }): Promise<void> {
      return asTemporalFailure(async () => {
        const m = await transitionMachine(await inventory(), machineId, state, { detail });
        if (state === 'ready') recordProvisioning(m.cluster, 'provisioned');
      });
    },

    /**
     * Destroys the machine at its provider and records it: the compensation of a failed provisioning (`reason`,
     * kept as the machine's failure reason; the machine is `destroying` until done), and the end of a
     * decommissioning. It destroys what its provider id names and whatever the provider holds under its
     * idempotency key, so a machine whose create never answered is found too; gone already is fine. Every
     * failure at the provider is retryable: the workflow retries it until the machine is gone.
     */
    async destroyMachine({ machineId, cluster, reason }: MachineRef & { reason?: string }): Promise<DestroyOutcome> {
      const { attempt } = Context.current().info;
      return asTemporalFailure(async () => {
        const db = await inventory();
        const m = await findMachine(db, machineId);
        // Nothing was reserved: a cancellation came before the reservation did, or the reservation was refused.
        if (!m) return { destroyed: [] };
        if (m.state === 'destroyed') return { destroyed: m.providerId ? [m.providerId] : [] };
        if (reason && m.state !== 'destroying') {
          await transitionMachine(db, machineId, 'destroying', { failureReason: reason, detail: reason });
          recordProvisioning(cluster, 'failed');
        }
        const provider = await providerOf(cluster);
        const ids = await retryingAtProvider(
          async () => {
            const byKey = await heartbeating(destroyEveryMs, () => provider.findByKey(machineId));
            const all = [...new Set([...(m.providerId ? [m.providerId] : []), ...byKey.map((x) => x.id)])];
            for (const id of all) await heartbeating(destroyEveryMs, () => provider.destroy(id), { destroying: id });
            return all;
          },
          async (err) => {
            if (attempt === 1) await recordMachineEvent(db, machineId, 'destroy-failed', `${err.message}; retrying until the provider lets it be destroyed`);
          },
        );
        await transitionMachine(db, machineId, 'destroyed', {
          ...(ids.length > 0 && !m.providerId && { providerId: ids[0] }),
          detail: `${reason ?? 'decommissioned'}; ${ids.length > 0 ? `destroyed ${ids.join(', ')} at the provider` : 'nothing had been created at the provider'}`,
        });
        return { destroyed: ids };
      });
    },

    /** The machines of a pool that exist (not destroyed), oldest first: what a scale compares with `desired`. */
    async listPoolMachines({ cluster, pool }: { cluster: string; pool: string }): Promise<{ machineId: string; name: string; state: MachineState }[]> {
      return asTemporalFailure(async () => (await listMachines(await inventory(), { cluster, pool })).filter((m) => m.state !== 'destroyed').map((m) => ({ machineId: m.id, name: m.name, state: m.state })));
    },

    ...createReconcileActivities(context),
  };
}
