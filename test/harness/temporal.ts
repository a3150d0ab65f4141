import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startTemporalDevServer } from '../../embedded/temporal-dev-server.ts';
import { freePort } from '../../embedded/processes.ts';

export interface TestTemporal {
  address: string;
  client: Client;
  close(): Promise<void>;
}

/**
 * The Temporal server for a test file: the one `npm test` started for the whole run (BERTH_TEST_TEMPORAL_ADDRESS),
 * or, when a file runs on its own, a headless dev server of its own on a free port.
 */
export async function connectTestTemporal(): Promise<TestTemporal> {
  let address = process.env.BERTH_TEST_TEMPORAL_ADDRESS;
  let server: Awaited<ReturnType<typeof startTemporalDevServer>> | undefined;
  if (!address) {
    const dir = mkdtempSync(join(tmpdir(), 'berth-temporal-'));
    server = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
    address = server.address;
  }
  const connection = await Connection.connect({ address });
  return {
    address,
    client: new Client({ connection }),
    async close() {
      await connection.close();
      await server?.stop();
    },
  };
}
