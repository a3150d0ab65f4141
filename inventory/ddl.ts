import { PostgresAdapter, type CreateTableBuilder, type Kysely } from 'kysely';

/** An `id` primary key the database numbers itself: `serial` on PostgreSQL, an auto-increment integer elsewhere. */
export function withAutoId<T extends string>(db: Kysely<unknown>, table: CreateTableBuilder<T>): CreateTableBuilder<T, 'id'> {
  return db.getExecutor().adapter instanceof PostgresAdapter ? table.addColumn('id', 'serial', (c) => c.primaryKey()) : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
}
