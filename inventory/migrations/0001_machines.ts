import { sql, type Kysely } from 'kysely';
import { withAutoId } from '../ddl.ts';

// A migration is frozen once released: it spells out its states instead of importing today's list.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('machines')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('cluster', 'text', (c) => c.notNull())
    .addColumn('pool', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('provider_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('address', 'text')
    .addColumn('ssh_port', 'integer')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('host_key_fingerprint', 'text')
    .addColumn('instance_type', 'text', (c) => c.notNull())
    .addColumn('hourly_price', 'double precision', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('ready_at', 'bigint')
    .addColumn('destroyed_at', 'bigint')
    .addColumn('failure_reason', 'text')
    .addCheckConstraint('machines_state', sql`state in ('requested', 'creating', 'running', 'initializing', 'ready', 'decommissioning', 'destroyed', 'failed')`)
    .execute();
  await db.schema.createIndex('machines_cluster_pool').on('machines').columns(['cluster', 'pool']).execute();
  // A name is unique among a cluster's machines that still exist; a destroyed machine's name can come back.
  await db.schema.createIndex('machines_live_name').on('machines').columns(['cluster', 'name']).unique().where(sql.ref('destroyed_at'), 'is', null).execute();

  await withAutoId(db, db.schema.createTable('machine_events'))
    .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .execute();
  await db.schema.createIndex('machine_events_machine').on('machine_events').columns(['machine_id', 'at']).execute();

  await db.schema
    .createTable('pools')
    .addColumn('cluster', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('desired', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('pools_pk', ['cluster', 'name'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['pools', 'machine_events', 'machines']) await db.schema.dropTable(table).execute();
}
