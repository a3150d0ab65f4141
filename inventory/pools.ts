import type { Inventory } from './db.ts';

export interface PoolRecord {
  cluster: string;
  pool: string;
  /** The size the pool was last scaled to. */
  desired: number;
  /** Machines of the pool that still exist (not destroyed), in any state. */
  live: number;
}

/** Records the size a pool is being scaled to. */
export async function setPoolDesired(db: Inventory, p: { cluster: string; pool: string; desired: number; at?: Date }): Promise<void> {
  const updatedAt = (p.at ?? new Date()).getTime();
  await db
    .insertInto('pools')
    .values({ cluster: p.cluster, name: p.pool, desired: p.desired, updated_at: updatedAt })
    .onConflict((oc) => oc.columns(['cluster', 'name']).doUpdateSet({ desired: p.desired, updated_at: updatedAt }))
    .execute();
}

export async function listPools(db: Inventory, cluster?: string): Promise<PoolRecord[]> {
  let q = db
    .selectFrom('pools')
    .leftJoin('machines', (j) => j.onRef('machines.cluster', '=', 'pools.cluster').onRef('machines.pool', '=', 'pools.name').on('machines.destroyed_at', 'is', null))
    .select((eb) => ['pools.cluster', 'pools.name', 'pools.desired', eb.fn.count<number | string>('machines.id').as('live')])
    .groupBy(['pools.cluster', 'pools.name', 'pools.desired']);
  if (cluster !== undefined) q = q.where('pools.cluster', '=', cluster);
  const rows = await q.orderBy('pools.cluster').orderBy('pools.name').execute();
  return rows.map((r) => ({ cluster: r.cluster, pool: r.name, desired: r.desired, live: Number(r.live) }));
}
