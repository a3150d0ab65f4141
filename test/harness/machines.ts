import { openInventory, type Inventory } from '../../inventory/index.ts';
import type { BerthConfig } from '../../config/load.ts';
import { startWorkers, type WorkerSet } from '../../workers/run.ts';
import { testApi, type TestApi } from './api.ts';
import { testConfig, testRegistry } from './berth.ts';
import { connectTestTemporal, type TestTemporal } from './temporal.ts';

/** What a provisioning test runs against: berth's workers and API on one config, and the inventory they share. */
export interface MachineBed {
  temporal: TestTemporal;
  config: BerthConfig;
  api: TestApi;
  workers: WorkerSet;
  inventory: Inventory;
  close(): Promise<void>;
}

/** A config of these clusters (in IDC idc-a, all in project `ops`), its workers in this process and its API. */
export async function machineBed(id: string, more: { rateCard: Record<string, unknown>; initProfiles: Record<string, unknown>; clusters: ({ name: string } & Record<string, unknown>)[] }): Promise<MachineBed> {
  const temporal = await connectTestTemporal();
  const { config } = testConfig(id, temporal.address, [{ registry: await testRegistry(`${id}-reg`), idc: 'idc-a' }], {}, { ...more, projects: [{ name: 'ops', clusters: more.clusters.map((c) => c.name) }] });
  const workers = await startWorkers(config);
  const api = await testApi(config, temporal.client);
  const inventory = await openInventory(config.inventory);
  return {
    temporal,
    config,
    api,
    workers,
    inventory,
    async close() {
      await api.close();
      await workers.shutdown();
      await inventory.destroy();
      await temporal.close();
    },
  };
}
