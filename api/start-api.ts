import { Client, Connection } from '@temporalio/client';
import { openInventory } from '../activities/inventory/db.ts';
import { dataConverter } from '../codec/data-converter.ts';
import type { BerthConfig } from '../config/load.ts';
import { authStore, ensureFirstAdmin } from './auth/bootstrap.ts';
import { ensureRegistryGuards } from './registry-guards.ts';
import { keepReconcileSchedules } from './reconcile-schedules.ts';
import { ensureSearchAttributes } from './search-attributes.ts';
import { buildApi } from './server.ts';
import { reconcileSyncSchedules } from './sync-schedules.ts';

/**
 * The API process's start, shared by `npm start` and api/main.ts: a Temporal client with berth's payload codec,
 * the sync rules' schedules, the clusters' reconciliation schedules and the HA groups' guards brought in line with
 * berth.yaml, the inventory database (and, on a first start, the first admin), then the HTTP server.
 */
export async function startApi(config: BerthConfig, opts: { logger: boolean }) {
  const connection = await Connection.connect({ address: config.temporal.address });
  const opened: { close(): Promise<unknown> }[] = [connection];
  try {
    await ensureSearchAttributes(connection, config.temporal.namespace);
    const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter(config) });
    const inventory = await openInventory({ sqliteFile: config.inventory.sqliteFile });
    opened.unshift({ close: () => inventory.destroy() });
    const auth = authStore(inventory);
    const app = buildApi({ config, client, auth, inventory, logger: opts.logger });
    // Listening first: an API that cannot take its port must not rewrite schedules or stop guards.
    await app.listen({ host: config.api.host, port: config.api.port });
    opened.unshift(app);
    const firstAdminToken = await ensureFirstAdmin(auth);
    const schedules = await reconcileSyncSchedules(client, config);
    await keepReconcileSchedules(client, config);
    await ensureRegistryGuards(client, config);
    return {
      url: `http://${config.api.host}:${config.api.port}`,
      schedules,
      firstAdminToken,
      async close() {
        for (const o of opened) await o.close();
      },
    };
  } catch (err) {
    for (const o of opened) await o.close().catch(() => undefined);
    throw err;
  }
}
