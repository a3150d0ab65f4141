import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('allocations')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('slot', 'text', (c) => c.notNull())
    .addColumn('holder_key', 'text', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('allocated_at', 'bigint', (c) => c.notNull())
    // One holder per slot, one slot per holder: both enforced by the database, not by whoever asks first.
    .addPrimaryKeyConstraint('allocations_pk', ['scope', 'slot'])
    .addUniqueConstraint('allocations_holder', ['scope', 'holder_key'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('allocations').execute();
}
