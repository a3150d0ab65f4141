import { randomUUID } from 'node:crypto';
import { PostgresAdapter, sql, type Kysely } from 'kysely';

// A migration is frozen once released: it spells out its states instead of importing today's list. New here:
// `destroying`, a machine whose destroy at its provider is under way (compensation retries it until it succeeds).
const states = sql`state in ('requested', 'creating', 'running', 'initializing', 'ready', 'decommissioning', 'destroying', 'destroyed', 'failed')`;

export async function up(db: Kysely<any>): Promise<void> {
  // One id per inventory, tagged on every machine it makes: reconciliation tells this installation's machines from
  // those of another one (or of an earlier inventory) on the same provider.
  await db.schema
    .createTable('installation')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.insertInto('installation').values({ id: randomUUID(), created_at: Date.now() }).execute();

  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await db.schema.alterTable('machines').dropConstraint('machines_state').execute();
    await db.schema.alterTable('machines').addCheckConstraint('machines_state', states).execute();
  } else {
    await rebuildSqliteMachines(db);
  }
  // A provider's machine belongs to one live machine at most: two adoptions of one orphan cannot both succeed.
  await db.schema.createIndex('machines_live_provider_id').on('machines').columns(['cluster', 'provider_id']).unique().where(sql.ref('destroyed_at'), 'is', null).execute();
}

/**
 * SQLite cannot change a table's CHECK: following https://www.sqlite.org/lang_altertable.html#otheralter, the
 * table is made anew from its own definition with the wider check, filled, swapped in, and its indexes made
 * again, with foreign keys off so that dropping the old table does not take the machines' events with it. Taking
 * the definition as the database has it keeps whatever columns and indexes it has.
 */
async function rebuildSqliteMachines(db: Kysely<any>): Promise<void> {
  const definitions = async (type: 'table' | 'index') => (await sql<{ sql: string }>`select sql from sqlite_master where type = ${type} and tbl_name = 'machines' and sql is not null`.execute(db)).rows.map((r) => r.sql);
  const [table] = await definitions('table');
  const widened = table.replace(/^create table "machines"/i, 'create table "machines_next"').replace(/'decommissioning', 'destroyed', 'failed'/, "'decommissioning', 'destroying', 'destroyed', 'failed'");
  if (!widened.includes("'destroying'") || !widened.includes('"machines_next"')) throw new Error(`the machines table is not as migration 0001 made it: ${table}`);
  const indexes = await definitions('index');
  await sql`pragma foreign_keys = off`.execute(db);
  try {
    await db.transaction().execute(async (trx) => {
      await sql.raw(widened).execute(trx);
      await sql`insert into machines_next select * from machines`.execute(trx);
      await trx.schema.dropTable('machines').execute();
      await trx.schema.alterTable('machines_next').renameTo('machines').execute();
      for (const index of indexes) await sql.raw(index).execute(trx);
    });
  } finally {
    await sql`pragma foreign_keys = on`.execute(db);
  }
}

// The wider state check stays: rows may be `destroying` by then.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('machines_live_provider_id').execute();
  await db.schema.dropTable('installation').execute();
}
