import type { Inventory } from './db.ts';

/** A month of a machine running around the clock, as cloud price sheets count it (365 * 24 / 12). */
export const hoursPerMonth = 730;

const msPerHour = 3_600_000;

export interface CostQuery {
  groupBy: 'cluster' | 'pool';
  /** The window is [from, to); the part of it after `now` has not been spent yet and is left out. */
  from: Date;
  to: Date;
  now?: Date;
}

export interface CostRow {
  cluster: string;
  /** With groupBy pool. */
  pool?: string;
  /** Machine hours inside the window. */
  machineHours: number;
  /** machine hours times each machine's hourly price. */
  cost: number;
}

/**
 * What machines cost over a window: each machine's lifetime (created_at to destroyed_at, or still running) cut to
 * the window, times its hourly price, summed per cluster or per pool. Computed in the database with plain CASE
 * arithmetic on epoch milliseconds, which SQLite and PostgreSQL evaluate alike.
 */
export async function costs(db: Inventory, q: CostQuery): Promise<CostRow[]> {
  const from = q.from.getTime();
  const end = Math.min(q.to.getTime(), (q.now ?? new Date()).getTime());
  if (end <= from) return [];
  const rows = await db
    .selectFrom('machines')
    .where('created_at', '<', end)
    .where((eb) => eb.or([eb('destroyed_at', 'is', null), eb('destroyed_at', '>', from)]))
    .select((eb) => {
      const start = eb.case().when('created_at', '>', from).then(eb.ref('created_at')).else(from).end();
      const stop = eb
        .case()
        .when(eb.or([eb('destroyed_at', 'is', null), eb('destroyed_at', '>', end)]))
        .then(end)
        .else(eb.ref('destroyed_at'))
        .end();
      const ms = eb.parens(stop, '-', start);
      return ['cluster', eb.fn.sum<number | string>(ms).as('ms'), eb.fn.sum<number | string>(eb(ms, '*', eb.ref('hourly_price'))).as('price_ms')];
    })
    .groupBy('cluster')
    .orderBy('cluster')
    .$if(q.groupBy === 'pool', (qb) => qb.select('pool').groupBy('pool').orderBy('pool'))
    .execute();
  return rows.map((r) => ({
    cluster: r.cluster,
    ...(r.pool !== undefined && { pool: r.pool }),
    machineHours: Number(r.ms) / msPerHour,
    cost: Number(r.price_ms) / msPerHour,
  }));
}

/**
 * What a cluster's machines would cost in a month at today's count: every machine that still exists (including
 * requested ones, so that concurrent creates see each other) times its hourly price times 730 hours.
 */
export async function projectedMonthlyCost(db: Inventory, cluster: string): Promise<number> {
  const row = await db
    .selectFrom('machines')
    .where('cluster', '=', cluster)
    .where('destroyed_at', 'is', null)
    .select((eb) => eb.fn.sum<number | string | null>('hourly_price').as('hourly'))
    .executeTakeFirstOrThrow();
  return Number(row.hourly ?? 0) * hoursPerMonth;
}
