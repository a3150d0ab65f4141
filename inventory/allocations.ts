import type { Selectable } from 'kysely';
import type { Inventory } from './db.ts';
import { isoTime, type AllocationsTable } from './tables.ts';

export interface Allocation {
  scope: string;
  slot: string;
  key: string;
  labels: Record<string, string>;
  allocatedAt: string;
}

function toAllocation(row: Selectable<AllocationsTable>): Allocation {
  return { scope: row.scope, slot: row.slot, key: row.holder_key, labels: JSON.parse(row.labels), allocatedAt: isoTime(row.allocated_at)! };
}

/**
 * Gives `key` one of `candidates` in `scope`, the first free one in their order, or returns the slot the key
 * already holds (wherever it is): asking again with the same key never takes a second slot. Undefined when every
 * candidate is held. The database's keys decide a race: of two callers inserting the same slot, one gets it and
 * the other moves on.
 */
export async function allocate(db: Inventory, a: { scope: string; key: string; candidates: readonly string[]; labels: Record<string, string>; at?: Date }): Promise<{ allocation: Allocation; fresh: boolean } | undefined> {
  const held = async () => {
    const allocation = await allocationHeldBy(db, a.scope, a.key);
    return allocation && { allocation, fresh: false };
  };
  const before = await held();
  if (before) return before;
  const taken = new Set((await listAllocations(db, a.scope)).map((x) => x.slot));
  for (const slot of a.candidates.filter((c) => !taken.has(c))) {
    const inserted = await db
      .insertInto('allocations')
      .values({ scope: a.scope, slot, holder_key: a.key, labels: JSON.stringify(a.labels), allocated_at: (a.at ?? new Date()).getTime() })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (inserted.numInsertedOrUpdatedRows !== 0n) return { allocation: (await findAllocation(db, a.scope, slot))!, fresh: true };
    // The slot went to someone else meanwhile, or this key won a slot through a concurrent call.
    const won = await held();
    if (won) return won;
  }
  return undefined;
}

/** The slot `key` holds in `scope`, if any. */
export async function allocationHeldBy(db: Inventory, scope: string, key: string): Promise<Allocation | undefined> {
  const row = await db.selectFrom('allocations').selectAll().where('scope', '=', scope).where('holder_key', '=', key).executeTakeFirst();
  return row && toAllocation(row);
}

export async function findAllocation(db: Inventory, scope: string, slot: string): Promise<Allocation | undefined> {
  const row = await db.selectFrom('allocations').selectAll().where('scope', '=', scope).where('slot', '=', slot).executeTakeFirst();
  return row && toAllocation(row);
}

export async function listAllocations(db: Inventory, scope: string): Promise<Allocation[]> {
  const rows = await db.selectFrom('allocations').selectAll().where('scope', '=', scope).orderBy('slot').execute();
  return rows.map(toAllocation);
}

/** Merges labels into a held slot's; false when nobody holds the slot. */
export async function labelAllocation(db: Inventory, scope: string, slot: string, labels: Record<string, string>): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('allocations').select('labels').where('scope', '=', scope).where('slot', '=', slot).executeTakeFirst();
    if (!row) return false;
    await trx
      .updateTable('allocations')
      .set({ labels: JSON.stringify({ ...JSON.parse(row.labels), ...labels }) })
      .where('scope', '=', scope)
      .where('slot', '=', slot)
      .execute();
    return true;
  });
}

/** Frees a slot; freeing a free slot is not an error. */
export async function release(db: Inventory, scope: string, slot: string): Promise<void> {
  await db.deleteFrom('allocations').where('scope', '=', scope).where('slot', '=', slot).execute();
}
