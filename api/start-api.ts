import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { openInventory } from '../inventory/db.ts';
import { clientOptions } from '../codec/data-converter.ts';
import type { BerthConfig } from '../config/load.ts';
import { authStore, ensureFirstAdmin, firstAdminTokenFile, handOverFirstAdminToken } from './auth/bootstrap.ts';
import { keepReconcileSchedules } from './reconcile-schedules.ts';
import { ensureRegistryGuards, keepRegistryGuards } from './registry-guards.ts';
import { ensureSearchAttributes } from './search-attributes.ts';
import { buildApi } from './server.ts';
import { reconcileSyncSchedules } from './sync-schedules.ts';

/**
 * The SDK retries an unreachable server for about 20 s by default, and a caller waits all that time for its 503.
 * Three attempts within about half a second ride out a blip; a server that is down is answered as down at once.
 */
const retries = makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 3, maxIntervalMs: () => 500 }));

/**
 * The API process's start, shared by `npm start` and api/main.ts: a Temporal client with berth's payload codec,
 * the inventory database, the HTTP server, the sync rules' schedules, the clusters' reconciliation schedules and the
 * HA groups' guards brought in line with berth.yaml; then, on a first start and only once all that stands, the first admin, whose token goes to
 * `announce` (printed on a terminal, else written to a file: see handOverFirstAdminToken). A start that fails
 * before has created no admin, so a restart shows a token again and nobody is locked out.
 */
export async function startApi(config: BerthConfig, opts: { logger: boolean; announce?: (message: string) => void }) {
  const connection = await Connection.connect({ address: config.temporal.address, interceptors: [retries] });
  const opened: { close(): Promise<unknown> }[] = [connection];
  try {
    await ensureSearchAttributes(connection, config.temporal.namespace);
    const client = new Client({ connection, namespace: config.temporal.namespace, ...clientOptions(config) });
    const inventory = await openInventory(config.inventory);
    opened.unshift({ close: () => inventory.destroy() });
    const auth = authStore(inventory);
    const app = await buildApi({ config, client, auth, inventory, logger: opts.logger });
    // Listening first: an API that cannot take its port must not rewrite schedules or stop guards.
    await app.listen({ host: config.api.host, port: config.api.port });
    opened.unshift(app);
    const schedules = await reconcileSyncSchedules(client, config);
    await keepReconcileSchedules(client, config);
    await ensureRegistryGuards(client, config);
    opened.unshift(keepRegistryGuards(client, config));
    const announce = opts.announce ?? ((message: string) => console.log(message));
    const firstAdminToken = await ensureFirstAdmin(auth, (token) => announce(handOverFirstAdminToken(token, firstAdminTokenFile(config))));
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
