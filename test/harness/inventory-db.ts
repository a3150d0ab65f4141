import { join } from 'node:path';
import type { InventoryConfig } from '../../config/schema.ts';
import { startPostgres, type PostgresServer } from '../../embedded/postgres.ts';
import { freePort } from '../../embedded/processes.ts';
import { tempDir } from '../../testbed/berth.ts';

/** The databases every inventory and access test runs on: berth's default and the production one. */
export const inventoryKinds = ['sqlite', 'postgres'] as const;
export type InventoryKind = (typeof inventoryKinds)[number];

let server: Promise<PostgresServer> | undefined;
let databases = 0;

/** This test file's PostgreSQL cluster, started on first use. */
export function testPostgres(): Promise<PostgresServer> {
  server ??= freePort().then((port) => startPostgres({ dir: tempDir('postgres'), port }));
  return server;
}

/** berth.yaml's `inventory` for a fresh, empty inventory of that kind: a new SQLite file, or a new database. */
export async function freshInventory(kind: InventoryKind): Promise<InventoryConfig> {
  if (kind === 'sqlite') return { sqliteFile: join(tempDir('inventory'), 'inventory.db') };
  const pg = await testPostgres();
  const database = `inventory_${process.pid}_${++databases}`;
  await pg.createDatabase(database);
  return { postgres: { host: pg.host, port: pg.port, database, user: pg.user, ssl: false, maxConnections: 5 } };
}

/** Stops the cluster, if this file started one. */
export async function stopTestPostgres(): Promise<void> {
  await (await server)?.stop();
}
