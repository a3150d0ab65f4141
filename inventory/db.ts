import { mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { FileMigrationProvider, Kysely, Migrator, PostgresDialect, SqliteDialect, type Dialect } from 'kysely';
import pg from 'pg';
import type { InventoryConfig, PostgresConfig } from '../config/schema.ts';
import { readSecret } from '../config/secrets.ts';
import type { InventoryTables } from './tables.ts';

/** The inventory database. Open one per process and share it; `destroy()` closes it. */
export type Inventory = Kysely<InventoryTables>;

/** berth.yaml's `inventory` (a SQLite file or PostgreSQL), or any other Kysely dialect. */
export type InventoryTarget = InventoryConfig | { dialect: Dialect };

/** Every file in migrations/ is one migration, applied in name order: a new table is a new numbered file there. */
const migrationFolder = fileURLToPath(new URL('./migrations/', import.meta.url));

/** Opens the inventory and brings its schema up to date; already applied migrations are skipped. */
export async function openInventory(target: InventoryTarget): Promise<Inventory> {
  const db = new Kysely<InventoryTables>({ dialect: inventoryDialect(target) });
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return db;
}

/** How Kysely reaches the inventory (a test of a migration builds the schema an older berth left with it). */
export function inventoryDialect(target: InventoryTarget): Dialect {
  return 'dialect' in target ? target.dialect : target.postgres ? postgresDialect(target.postgres) : sqliteDialect(target.sqliteFile);
}

function sqliteDialect(file: string): Dialect {
  mkdirSync(path.dirname(file), { recursive: true });
  // A writer waits up to 5 s for another process's write instead of failing at once.
  const database = new Database(file, { timeout: 5000 });
  // WAL: the API reads while workers write, without blocking each other.
  database.pragma('journal_mode = WAL');
  database.pragma('foreign_keys = ON');
  return new SqliteDialect({ database });
}

function postgresDialect(cfg: PostgresConfig): Dialect {
  const hasPassword = cfg.passwordEnv !== undefined || cfg.passwordFile !== undefined;
  const pool = new pg.Pool({
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    password: hasPassword ? readSecret({ env: cfg.passwordEnv, file: cfg.passwordFile }, `the password of the inventory database ${cfg.database}`) : undefined,
    ssl: cfg.ssl,
    max: cfg.maxConnections,
    connectionTimeoutMillis: 10_000,
    // bigint columns (epoch milliseconds, counts) as numbers, as SQLite returns them: they stay far below 2^53.
    types: { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format as 'text')) },
  });
  // A server restart breaks idle connections: the pool drops them and the next query opens a new one. Without a
  // listener, that error would end the process.
  pool.on('error', () => undefined);
  return new PostgresDialect({ pool });
}

async function migrate(db: Kysely<InventoryTables>): Promise<void> {
  const migrator = new Migrator({ db, provider: new FileMigrationProvider({ fs, path, migrationFolder }) });
  // Two processes migrating one fresh SQLite file at once: the later transaction fails (its snapshot is stale or
  // the table exists by now) and rolls back whole; the next try finds the work done. PostgreSQL takes a lock instead.
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (error === undefined) return;
    if (attempt < 3) continue;
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? '(before any migration ran)';
    throw new Error(`inventory migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
