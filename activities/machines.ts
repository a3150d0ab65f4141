import { ApplicationFailure, Context } from '@temporalio/activity';
import ssh2 from 'ssh2';
import type { BerthConfig } from '../config/load.ts';
import { cloudProviders } from './cloud/index.ts';
import { machineSpecSchema } from './cloud/provider.ts';
import { recordProvisioning } from '../metrics/registry.ts';
import { asTemporalFailure } from './failures.ts';
import { resolvePrivateKey } from './hosts/private-key.ts';
import {
  getMachine,
  listMachines,
  openInventory,
  pinHostKey,
  projectedMonthlyCost,
  recordMachine,
  transitionMachine,
  type Inventory,
  type MachineRecord,
  type MachineState,
} from './inventory/index.ts';

export interface MachineRef {
  machineId: string;
  cluster: string;
}

export interface ReserveMachineInput extends MachineRef {
  pool: string;
  name: string;
}

/** Polls while a machine boots; the activity heartbeats on every poll. */
const pollEveryMs = 1000;

/**
 * Activities of provisioning, on the main queue (control activities): the inventory, the budget, and the cluster's
 * provider. One inventory connection per worker process, opened on first use.
 */
export function createMachineActivities(config: BerthConfig) {
  let opened: Promise<Inventory> | undefined;
  const inventory = () => (opened ??= openInventory(config.inventory));
  let providers: ReturnType<typeof cloudProviders> | undefined;
  const providerOf = async (cluster: string) => (providers ??= cloudProviders(config, await inventory()))(cluster);
  const clusterOf = (name: string) => {
    const cluster = config.clusters.find((c) => c.name === name);
    if (!cluster) throw ApplicationFailure.nonRetryable(`cluster "${name}" is not in this worker's config`, 'UnknownCluster');
    return cluster;
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
        const m = await getMachine(db, machineId);
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
        const created = await (await providerOf(cluster)).create(spec.data);
        await transitionMachine(db, machineId, 'creating', { providerId: created.id, detail: created.created ? 'created' : 'found by its idempotency key' });
        return { providerId: created.id };
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
     * Destroys the machine at its provider (gone already is fine) and records why: the compensation of a failed
     * provisioning, and the end of a decommissioning. `reason` is kept as the machine's failure reason.
     */
    async destroyMachine({ machineId, cluster, reason }: MachineRef & { reason?: string }): Promise<void> {
      return asTemporalFailure(async () => {
        const db = await inventory();
        const m = await getMachine(db, machineId);
        if (m.state === 'destroyed') return;
        if (reason) {
          await transitionMachine(db, machineId, 'failed', { failureReason: reason, detail: reason });
          recordProvisioning(cluster, 'failed');
        }
        if (m.providerId) await (await providerOf(cluster)).destroy(m.providerId);
        await transitionMachine(db, machineId, 'destroyed', { detail: reason ?? 'decommissioned' });
      });
    },

    /** The machines of a pool that exist (not destroyed), oldest first: what a scale compares with `desired`. */
    async listPoolMachines({ cluster, pool }: { cluster: string; pool: string }): Promise<{ machineId: string; name: string; state: MachineState }[]> {
      return asTemporalFailure(async () =>
        (await listMachines(await inventory(), { cluster, pool }))
          .filter((m) => m.state !== 'destroyed')
          .map((m) => ({ machineId: m.id, name: m.name, state: m.state })),
      );
    },
  };
}
