import type { Selectable, Transaction } from 'kysely';
import type { Inventory } from './db.ts';
import { InventoryError } from './errors.ts';
import { isoTime, type InventoryTables, type MachinesTable, type MachineState } from './tables.ts';

export interface MachineRecord {
  id: string;
  cluster: string;
  pool: string;
  provider: string;
  providerId: string | null;
  name: string;
  address: string | null;
  sshPort: number | null;
  state: MachineState;
  hostKeyFingerprint: string | null;
  instanceType: string;
  hourlyPrice: number;
  createdAt: string;
  readyAt: string | null;
  destroyedAt: string | null;
  failureReason: string | null;
}

export interface NewMachine {
  /** The caller's id for the machine (derived from the workflow), so that a retried record is a no-op. */
  id: string;
  cluster: string;
  pool: string;
  provider: string;
  name: string;
  instanceType: string;
  hourlyPrice: number;
  /** When the machine was requested: its lifetime, and its cost, start here. Now when not given. */
  at?: Date;
}

/**
 * Where each state may go. `failed` and `destroying` still exist (and cost) until their destroy at the provider is
 * done; a destroying machine can only end destroyed.
 */
const nextStates: Record<MachineState, readonly MachineState[]> = {
  requested: ['creating', 'failed', 'destroying', 'destroyed'],
  creating: ['running', 'failed', 'decommissioning', 'destroying', 'destroyed'],
  running: ['initializing', 'failed', 'decommissioning', 'destroying', 'destroyed'],
  initializing: ['ready', 'failed', 'decommissioning', 'destroying', 'destroyed'],
  ready: ['decommissioning', 'failed', 'destroying', 'destroyed'],
  decommissioning: ['destroying', 'destroyed', 'failed'],
  destroying: ['destroyed'],
  failed: ['decommissioning', 'destroying', 'destroyed'],
  destroyed: [],
};

function toRecord(row: Selectable<MachinesTable>): MachineRecord {
  return {
    id: row.id,
    cluster: row.cluster,
    pool: row.pool,
    provider: row.provider,
    providerId: row.provider_id,
    name: row.name,
    address: row.address,
    sshPort: row.ssh_port,
    state: row.state,
    hostKeyFingerprint: row.host_key_fingerprint,
    instanceType: row.instance_type,
    hourlyPrice: Number(row.hourly_price),
    createdAt: isoTime(row.created_at)!,
    readyAt: isoTime(row.ready_at),
    destroyedAt: isoTime(row.destroyed_at),
    failureReason: row.failure_reason,
  };
}

function describeMachine(m: MachineRecord): string {
  return `machine ${m.id} (${m.cluster}/${m.pool}/${m.name})`;
}

async function insertEvent(db: Inventory | Transaction<InventoryTables>, machineId: string, at: Date, kind: string, detail: string | null): Promise<void> {
  await db.insertInto('machine_events').values({ machine_id: machineId, at: at.getTime(), kind, detail }).execute();
}

export async function findMachine(db: Inventory, id: string): Promise<MachineRecord | undefined> {
  const row = await db.selectFrom('machines').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toRecord(row);
}

/** The live (not destroyed) machine of a cluster that holds this provider id, if any. */
export async function findMachineByProviderId(db: Inventory, cluster: string, providerId: string): Promise<MachineRecord | undefined> {
  const row = await db.selectFrom('machines').selectAll().where('cluster', '=', cluster).where('provider_id', '=', providerId).where('destroyed_at', 'is', null).executeTakeFirst();
  return row && toRecord(row);
}

export async function getMachine(db: Inventory, id: string): Promise<MachineRecord> {
  const machine = await findMachine(db, id);
  if (!machine) throw new InventoryError('UnknownMachine', `the inventory has no machine ${id}`);
  return machine;
}

/** Records a requested machine; recording the same id again returns the machine as it is. */
export async function recordMachine(db: Inventory, m: NewMachine): Promise<MachineRecord> {
  const at = m.at ?? new Date();
  await db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('machines')
      .values({ id: m.id, cluster: m.cluster, pool: m.pool, provider: m.provider, name: m.name, instance_type: m.instanceType, hourly_price: m.hourlyPrice, state: 'requested', created_at: at.getTime() })
      // Either the id exists (a retry) or the name is live under another id: told apart below.
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (inserted.numInsertedOrUpdatedRows !== 0n) await insertEvent(trx, m.id, at, 'requested', null);
  });
  const machine = await findMachine(db, m.id);
  if (machine) return machine;
  const holder = await db.selectFrom('machines').selectAll().where('cluster', '=', m.cluster).where('name', '=', m.name).where('destroyed_at', 'is', null).executeTakeFirstOrThrow();
  throw new InventoryError('NameTaken', `cluster ${m.cluster} already has a machine named ${m.name}: ${holder.id}, ${holder.state}`);
}

export interface Transition {
  at?: Date;
  /** Said in the machine's event. */
  detail?: string;
  providerId?: string;
  address?: string;
  sshPort?: number;
  /** Required when moving to `failed`; kept when the failed machine is then destroyed. */
  failureReason?: string;
}

/**
 * Moves a machine to `to`, stamping ready_at / destroyed_at and recording an event. Moving it to the state it is
 * already in only applies the given fields (a retried activity); a move the lifecycle does not allow is refused.
 */
export async function transitionMachine(db: Inventory, id: string, to: MachineState, t: Transition = {}): Promise<MachineRecord> {
  if (to === 'failed' && !t.failureReason) throw new Error('a move to failed needs a failureReason');
  const at = t.at ?? new Date();
  await db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('machines').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new InventoryError('UnknownMachine', `the inventory has no machine ${id}`);
    const from = row.state;
    if (from !== to && !nextStates[from].includes(to)) {
      throw new InventoryError('InvalidTransition', `${describeMachine(toRecord(row))} is ${from}: it cannot become ${to}`);
    }
    const changed = from !== to;
    await trx
      .updateTable('machines')
      .set({
        state: to,
        ...(t.providerId !== undefined && { provider_id: t.providerId }),
        ...(t.address !== undefined && { address: t.address }),
        ...(t.sshPort !== undefined && { ssh_port: t.sshPort }),
        ...(t.failureReason !== undefined && { failure_reason: t.failureReason }),
        ...(changed && to === 'ready' && { ready_at: at.getTime() }),
        ...(changed && to === 'destroyed' && { destroyed_at: at.getTime() }),
      })
      .where('id', '=', id)
      .execute();
    if (changed) await insertEvent(trx, id, at, to, t.detail ?? t.failureReason ?? null);
  });
  return getMachine(db, id);
}

/** Something that happened to a machine besides a state change (an init step's outcome), for its history. */
export async function recordMachineEvent(db: Inventory, id: string, kind: string, detail?: string, at = new Date()): Promise<void> {
  await getMachine(db, id);
  await insertEvent(db, id, at, kind, detail ?? null);
}

export async function machineEvents(db: Inventory, id: string): Promise<{ at: string; kind: string; detail: string | null }[]> {
  const rows = await db.selectFrom('machine_events').select(['at', 'kind', 'detail']).where('machine_id', '=', id).orderBy('at').orderBy('id').execute();
  return rows.map((r) => ({ at: isoTime(r.at)!, kind: r.kind, detail: r.detail }));
}

export interface MachineFilter {
  cluster?: string;
  pool?: string;
  state?: MachineState | readonly MachineState[];
}

export async function listMachines(db: Inventory, filter: MachineFilter = {}): Promise<MachineRecord[]> {
  let q = db.selectFrom('machines').selectAll();
  if (filter.cluster !== undefined) q = q.where('cluster', '=', filter.cluster);
  if (filter.pool !== undefined) q = q.where('pool', '=', filter.pool);
  if (filter.state !== undefined) q = q.where('state', 'in', typeof filter.state === 'string' ? [filter.state] : filter.state);
  const rows = await q.orderBy('created_at').orderBy('id').execute();
  return rows.map(toRecord);
}

/**
 * Trust on first use, then verify: the first fingerprint seen is pinned, a later connection must offer the same.
 * A different one is refused: a reinstalled host, or someone in between.
 */
export async function pinHostKey(db: Inventory, id: string, fingerprint: string): Promise<'pinned' | 'verified'> {
  const set = await db.updateTable('machines').set({ host_key_fingerprint: fingerprint }).where('id', '=', id).where('host_key_fingerprint', 'is', null).executeTakeFirst();
  if (set.numUpdatedRows === 1n) {
    await insertEvent(db, id, new Date(), 'host-key-pinned', fingerprint);
    return 'pinned';
  }
  const machine = await getMachine(db, id);
  if (machine.hostKeyFingerprint === fingerprint) return 'verified';
  throw new InventoryError('HostKeyMismatch', `${describeMachine(machine)} offered host key ${fingerprint}, but ${machine.hostKeyFingerprint} is pinned: refusing to connect`);
}
